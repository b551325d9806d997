import { App, Tags } from "aws-cdk-lib";
import { ApiStack } from "./api-stack";
import { DatabaseStack } from "./database-stack";
import { Revision } from "./revision";

/** Vela's two stacks at one revision. Environment-agnostic: the same templates deploy to any account. */
export function defineStacks(app: App, revision: Revision): void {
  const database = new DatabaseStack(app, "DatabaseStack", {
    revision,
    description: `Vela data: VPC, tables, relational database (${revision})`,
  });
  new ApiStack(app, "ApiStack", { revision, database, description: `Vela API Lambda (${revision})` });
  Tags.of(app).add("app", "vela");
}
