// npm run build: copies the .proto files of the repository into the package, generates
// TypeScript types from them (proto-loader-gen-types) and compiles src/ to dist/.
// Generated code (proto/, src/generated/, dist/) is never committed.
import { cpSync, rmSync, mkdirSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const repoProto = join(pkg, "..", "..", "proto");
const bin = (name) => join(pkg, "node_modules", ".bin", name);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: pkg, stdio: "inherit" });

if (existsSync(repoProto)) {
  rmSync(join(pkg, "proto"), { recursive: true, force: true });
  cpSync(repoProto, join(pkg, "proto"), { recursive: true });
}
rmSync(join(pkg, "src", "generated"), { recursive: true, force: true });
mkdirSync(join(pkg, "src", "generated"), { recursive: true });
// The same options as the runtime loader in src/proto.ts: int64 as decimal strings,
// enums as their names, defaults filled in, oneofs named.
run(bin("proto-loader-gen-types"), [
  "--grpcLib=@grpc/grpc-js",
  "--longs=String",
  "--enums=String",
  "--defaults",
  "--oneofs",
  "--includeComments",
  "--includeDirs=proto",
  "--outDir=src/generated",
  "pulsebus/v1/pulsebus.proto",
  "edupulse/events/v1/events.proto",
]);
// The generator writes extensionless relative imports; Node's ESM resolution (and tsc
// with NodeNext) wants the .js ending.
addJsExtensions(join(pkg, "src", "generated"));
rmSync(join(pkg, "dist"), { recursive: true, force: true });
run(bin("tsc"), ["-p", "tsconfig.json"]);

function addJsExtensions(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      addJsExtensions(path);
    } else if (entry.name.endsWith(".ts")) {
      const text = readFileSync(path, "utf8");
      writeFileSync(path, text.replace(/from '(\.\.?\/[^']+?)(?<!\.js)'/g, "from '$1.js'"));
    }
  }
}
