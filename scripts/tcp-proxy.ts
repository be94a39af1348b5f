/**
 * A TCP proxy in front of one Kafka listener, for scripts/ha-demo.sh: stop the
 * process to cut the link (every connection drops, new ones are refused), start
 * it again to restore. Like the walkthrough's toxiproxy, without Docker.
 *
 *   deno run --allow-net scripts/tcp-proxy.ts --listen PORT --target PORT
 */
import { parseArgs } from "node:util";
import { TcpProxy } from "../tests/helpers/tcp_proxy.ts";

const { values } = parseArgs({
  options: { listen: { type: "string" }, target: { type: "string" }, help: { type: "boolean", short: "h" } },
});
if (values.help || !values.listen || !values.target) {
  console.log("Usage: deno run --allow-net scripts/tcp-proxy.ts --listen PORT --target PORT");
  Deno.exit(values.help ? 0 : 2);
}
const proxy = new TcpProxy(Number(values.listen), Number(values.target));
proxy.start();
console.log(`tcp-proxy: 127.0.0.1:${values.listen} -> 127.0.0.1:${values.target}`);
const stop = async () => {
  await proxy.cut();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
