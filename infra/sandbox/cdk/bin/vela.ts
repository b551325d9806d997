import { App, Tags } from "aws-cdk-lib";
import { ApiStack } from "../lib/api-stack";
import { DatabaseStack } from "../lib/database-stack";
import { parseRevision } from "../lib/revision";

const app = new App();
const revision = parseRevision(app.node.tryGetContext("revision"));

// Environment-agnostic stacks: the same templates deploy to the sandbox's account and to any other.
const database = new DatabaseStack(app, "DatabaseStack", {
  revision,
  description: `Vela data: VPC, tables, relational database (${revision})`,
});
new ApiStack(app, "ApiStack", { revision, database, description: `Vela API Lambda (${revision})` });
Tags.of(app).add("app", "vela");
