import { CfnOutput, CfnResource, RemovalPolicy, Stack, StackProps } from "aws-cdk-lib";
import * as dsql from "aws-cdk-lib/aws-dsql";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as rds from "aws-cdk-lib/aws-rds";
import { Construct, IConstruct } from "constructs";
import { hasAurora, hasDsql, Revision } from "./revision";

export interface DatabaseStackProps extends StackProps {
  readonly revision: Revision;
}

/** Vela's app tables: name and partition key. Their data is the app's; the runbook must leave it unchanged. */
export const TABLES: ReadonlyArray<readonly [string, string, string]> = [
  ["Users", "vela-users", "userId"],
  ["Sessions", "vela-sessions", "sessionId"],
  ["Content", "vela-content", "contentId"],
];

export const DSQL_PORT = 5432;

/**
 * The VPC (two private subnets, no NAT gateway), the API's security group, the DynamoDB tables, and
 * the relational database: Aurora PostgreSQL in r0, Aurora DSQL beside it in r1, DSQL alone in r2.
 */
export class DatabaseStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly apiSecurityGroup: ec2.SecurityGroup;
  readonly tables: Record<string, dynamodb.Table> = {};
  readonly aurora?: rds.DatabaseCluster;
  readonly dsqlCluster?: dsql.CfnCluster;

  constructor(scope: Construct, id: string, props: DatabaseStackProps) {
    super(scope, id, props);

    this.vpc = new ec2.Vpc(this, "VelaVpc", {
      vpcName: "vela-vpc",
      ipAddresses: ec2.IpAddresses.cidr("10.20.0.0/16"),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: "private", subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      // Its default would add a custom resource (a Lambda) to strip the default security group: kept
      // out so the templates need no Lambda runtime to deploy (docs/sandbox.md).
      restrictDefaultSecurityGroup: false,
    });

    this.apiSecurityGroup = new ec2.SecurityGroup(this, "ApiSecurityGroup", {
      vpc: this.vpc,
      securityGroupName: "vela-api-sg",
      description: "Vela API Lambda",
      allowAllOutbound: true,
    });

    for (const [id, tableName, key] of TABLES) {
      this.tables[tableName] = new dynamodb.Table(this, `${id}Table`, {
        tableName,
        partitionKey: { name: key, type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      new CfnOutput(this, `${id}TableName`, { value: tableName });
    }

    if (hasAurora(props.revision)) {
      this.aurora = this.auroraCluster(props.revision);
    }
    if (hasDsql(props.revision)) {
      this.dsqlCluster = this.dsql();
    }
  }

  private auroraCluster(revision: Revision): rds.DatabaseCluster {
    const cluster = new rds.DatabaseCluster(this, "Aurora", {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_15_4 }),
      clusterIdentifier: "vela-aurora",
      credentials: rds.Credentials.fromGeneratedSecret("vela", { secretName: "vela/aurora/credentials" }),
      defaultDatabaseName: "vela",
      port: 5432,
      writer: rds.ClusterInstance.provisioned("Writer", {
        instanceIdentifier: "vela-aurora-writer",
        instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM),
      }),
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      storageEncrypted: true,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });
    cluster.connections.allowDefaultPortFrom(this.apiSecurityGroup, "Vela API to Aurora");
    if (revision === "r1") {
      // r2 removes Aurora from this stack. What CloudFormation does on removal is the policy of the
      // template being replaced, so r1 sets it: RETAIN on the cluster and everything it stands on.
      // SNAPSHOT would fail on a deletion-protected cluster and leave the stack half-cleaned; DELETE
      // loses the final snapshot. Retained, the cluster leaves the stack intact and VelaOps's recorded
      // "snapshot, then decommission" steps delete it, with the snapshot kept (docs/sandbox.md).
      retainAll(cluster);
    }
    new CfnOutput(this, "AuroraClusterIdentifier", { value: cluster.clusterIdentifier });
    new CfnOutput(this, "AuroraClusterArn", { value: cluster.clusterArn });
    new CfnOutput(this, "AuroraSecretArn", { value: cluster.secret!.secretArn });
    return cluster;
  }

  private dsql(): dsql.CfnCluster {
    const cluster = new dsql.CfnCluster(this, "DsqlCluster", {
      deletionProtectionEnabled: true,
      tags: [
        { key: "Name", value: "vela-dsql" },
        { key: "app", value: "vela" },
      ],
    });
    // The cluster holds Vela's data from now on: neither a stack deletion nor a replacement may drop it.
    cluster.applyRemovalPolicy(RemovalPolicy.RETAIN);

    // Private subnets without a NAT gateway reach DSQL only through an interface endpoint of the
    // cluster's own connection service, in the VPC, with private DNS.
    const endpointSecurityGroup = new ec2.SecurityGroup(this, "DsqlEndpointSecurityGroup", {
      vpc: this.vpc,
      description: "Vela DSQL interface endpoint",
      allowAllOutbound: false,
    });
    endpointSecurityGroup.addIngressRule(this.apiSecurityGroup, ec2.Port.tcp(DSQL_PORT), "Vela API to DSQL");
    new ec2.InterfaceVpcEndpoint(this, "DsqlVpcEndpoint", {
      vpc: this.vpc,
      service: new ec2.InterfaceVpcEndpointService(cluster.attrVpcEndpointServiceName, DSQL_PORT),
      privateDnsEnabled: true,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [endpointSecurityGroup],
      open: false,
    });

    new CfnOutput(this, "DsqlClusterIdentifier", { value: cluster.attrIdentifier });
    new CfnOutput(this, "DsqlClusterArn", { value: cluster.attrResourceArn });
    new CfnOutput(this, "DsqlEndpoint", { value: cluster.attrEndpoint });
    return cluster;
  }
}

// What a retained Aurora stands on: deleting these while the cluster lives would fail (in use) or strand it.
const RETAINED_WITH_AURORA = new Set([
  "AWS::RDS::DBCluster",
  "AWS::RDS::DBInstance",
  "AWS::RDS::DBSubnetGroup",
  "AWS::EC2::SecurityGroup",
  "AWS::SecretsManager::Secret",
]);

function retainAll(root: IConstruct): void {
  for (const child of root.node.findAll()) {
    if (child instanceof CfnResource && RETAINED_WITH_AURORA.has(child.cfnResourceType)) {
      child.applyRemovalPolicy(RemovalPolicy.RETAIN);
    }
  }
}
