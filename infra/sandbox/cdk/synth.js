// Synthesizes every revision of Vela's CDK app (`cdk synth -c revision=rN`) and keeps the templates
// the sandbox deploys in synth/rN/. Run by `make cdk-synth`; tests/sandbox/test_cdk_synth.py runs it
// into a temporary directory and compares.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const REVISIONS = ["r0", "r1", "r2"];
const STACKS = ["DatabaseStack", "ApiStack"];
const here = __dirname;
const target = path.resolve(process.argv[2] || path.join(here, "synth"));
const cdk = path.join(here, "node_modules", ".bin", "cdk");

execFileSync(path.join(here, "node_modules", ".bin", "tsc"), { cwd: here, stdio: "inherit" });
for (const revision of REVISIONS) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `vela-cdk-${revision}-`));
  try {
    execFileSync(cdk, ["synth", "--quiet", "--no-notices", "-c", `revision=${revision}`, "-o", out], {
      cwd: here,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: "true" },
    });
    const dir = path.join(target, revision);
    fs.mkdirSync(dir, { recursive: true });
    for (const stack of STACKS) {
      const template = JSON.parse(fs.readFileSync(path.join(out, `${stack}.template.json`), "utf8"));
      fs.writeFileSync(path.join(dir, `${stack}.template.json`), JSON.stringify(template, null, 1) + "\n");
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}
console.log(`templates of ${REVISIONS.join(", ")} written to ${target}`);
