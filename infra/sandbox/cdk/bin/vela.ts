// The CDK CLI's entry point (cdk.json): `npx cdk synth -c revision=r1`, `npx cdk diff`, as a team runs it.
import { App } from "aws-cdk-lib";
import { defineStacks } from "../lib/app";
import { parseRevision } from "../lib/revision";

const app = new App();
defineStacks(app, parseRevision(app.node.tryGetContext("revision")));
