#!/usr/bin/env -S deno run --allow-net --allow-env --allow-read --allow-write --allow-sys
/** Edge Bridge entry point: hands the command line to src/cli. */
import { main } from "./src/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
