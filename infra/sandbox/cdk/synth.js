// Synthesizes every revision of Vela's CDK app and keeps the templates the sandbox deploys in synth/rN/
// (or in the directory given). One Node process runs aws-cdk-lib's App.synth() per revision with
// cdk.json's context, as `cdk synth -c revision=rN` does, without loading the CLI three times.
// `make cdk-synth` type-checks first (tsc --noEmit); this script only transpiles, so
// tests/sandbox/test_cdk_synth.py stays quick.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const ts = require("typescript");

const REVISIONS = ["r0", "r1", "r2"];
const STACKS = ["DatabaseStack", "ApiStack"];
const here = __dirname;
const target = path.resolve(process.argv[2] || path.join(here, "synth"));

function transpile() {
  const config = ts.readConfigFile(path.join(here, "tsconfig.json"), ts.sys.readFile).config;
  const { options, fileNames } = ts.parseJsonConfigFileContent(config, ts.sys, here);
  for (const file of fileNames) {
    const out = path.join(options.outDir, path.relative(here, file)).replace(/\.ts$/, ".js");
    const { outputText } = ts.transpileModule(fs.readFileSync(file, "utf8"), { compilerOptions: options, fileName: file });
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, outputText);
  }
}

transpile();
const { App } = require("aws-cdk-lib");
const { defineStacks } = require("./dist/lib/app");
const { parseRevision } = require("./dist/lib/revision");
const settings = JSON.parse(fs.readFileSync(path.join(here, "cdk.json"), "utf8"));

for (const revision of REVISIONS) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `vela-cdk-${revision}-`));
  try {
    const app = new App({
      outdir,
      // What the CLI adds to every synth (path metadata: the tree in each resource's Metadata).
      context: { ...settings.context, "aws:cdk:enable-path-metadata": true, "aws:cdk:enable-asset-metadata": true, revision },
      analyticsReporting: settings.versionReporting,
      autoSynth: false,
    });
    defineStacks(app, parseRevision(revision));
    const assembly = app.synth();
    const dir = path.join(target, revision);
    fs.mkdirSync(dir, { recursive: true });
    for (const stack of STACKS) {
      const template = assembly.getStackByName(stack).template;
      fs.writeFileSync(path.join(dir, `${stack}.template.json`), JSON.stringify(template, null, 1) + "\n");
    }
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}
console.log(`templates of ${REVISIONS.join(", ")} written to ${target}`);
