import { CfnOutput, Duration, Stack, StackProps } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";
import { DatabaseStack } from "./database-stack";
import { hasAurora, hasDsql, Revision } from "./revision";

export interface ApiStackProps extends StackProps {
  readonly revision: Revision;
  readonly database: DatabaseStack;
}

// The API is Hono on Node 20 in the real monorepo; its bundle is an asset there. Inline here: the
// sandbox deploys the templates without an asset upload, and nothing runs this code (the sandbox's
// health route stands in for the API).
const HANDLER = 'exports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ status: "ok" }) });';

/** The API Lambda in the VPC's private subnets, wired to the tables and the relational database. */
export class ApiStack extends Stack {
  constructor(scope: Construct, id: string, props: ApiStackProps) {
    super(scope, id, props);
    const db = props.database;

    const role = new iam.Role(this, "ApiRole", {
      roleName: "vela-api-role",
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName("service-role/AWSLambdaVPCAccessExecutionRole")],
    });

    const environment: Record<string, string> = { NODE_OPTIONS: "--enable-source-maps" };
    environment.USERS_TABLE = db.tables["vela-users"].tableName;
    environment.SESSIONS_TABLE = db.tables["vela-sessions"].tableName;
    environment.CONTENT_TABLE = db.tables["vela-content"].tableName;
    if (hasAurora(props.revision) && db.aurora) {
      environment.AURORA_CLUSTER_ARN = db.aurora.clusterArn;
      environment.AURORA_SECRET_ARN = db.aurora.secret!.secretArn;
    }
    if (hasDsql(props.revision) && db.dsqlCluster) {
      environment.DSQL_CLUSTER_ARN = db.dsqlCluster.attrResourceArn;
      environment.DSQL_ENDPOINT = db.dsqlCluster.attrEndpoint;
      environment.DSQL_REGION = this.region;
      // The application's own database role (VelaOps's "App's database role" step creates it and maps it to
      // this function's role with AWS IAM GRANT), not admin: least privilege inside DSQL.
      environment.DSQL_USER = "vela_api";
    }

    const fn = new lambda.Function(this, "ApiFunction", {
      functionName: "vela-api",
      // The plan's runtime. CDK warns that nodejs20.x creation closes on 2027-02-01: the team's next change.
      runtime: lambda.Runtime.NODEJS_20_X,
      handler: "index.handler",
      code: lambda.Code.fromInline(HANDLER),
      timeout: Duration.seconds(15),
      memorySize: 512,
      role,
      vpc: db.vpc,
      vpcSubnets: { subnets: db.vpc.isolatedSubnets },
      securityGroups: [db.apiSecurityGroup],
      environment,
    });

    for (const table of Object.values(db.tables)) {
      table.grantReadWriteData(fn);
    }
    if (hasAurora(props.revision) && db.aurora) {
      db.aurora.secret!.grantRead(fn);
    }
    if (hasDsql(props.revision) && db.dsqlCluster) {
      // IAM authentication: the token the API signs is only accepted with one of these on the cluster.
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ["dsql:DbConnect", "dsql:DbConnectAdmin"],
          resources: [db.dsqlCluster.attrResourceArn],
        }),
      );
    }

    new CfnOutput(this, "ApiFunctionName", { value: fn.functionName });
    new CfnOutput(this, "ApiFunctionArn", { value: fn.functionArn });
  }
}
