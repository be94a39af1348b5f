/** `edge-bridge hash-key`: the hash of an API key, for auth.apiKeys (the config never holds a key itself). */
import { generateApiKey, hashApiKey, type HashKind } from "../auth/api_keys.ts";
import { parseFlags, UsageError } from "./options.ts";

export const HASH_KEY_HELP = `edge-bridge hash-key: hash an API key for auth.apiKeys

Usage: edge-bridge hash-key [--generate] [--scrypt] [--id ID]
       echo -n "$KEY" | edge-bridge hash-key [--scrypt] [--id ID]

Reads the key from standard input (the first line, without its line break), so that it
stays out of shell history and the process list, and prints its hash. The bridge stores
and compares only hashes.

A client presents the key as "<id>.<key>", <id> being its auth.apiKeys id; a key hashed
with sha256 may also be presented alone. A key hashed with scrypt must come with its id:
the id tells the bridge which one slow hash to check.

  --generate  make a new random key ("ebk_" + 32 random bytes) and print it with its hash;
              the key is shown this once: hand it to its client now (with --id, as
              "<id>.<key>", ready to present)
  --scrypt    a salted scrypt hash (slow to check) instead of sha256; use it for keys
              that people chose. Generated keys are random enough for sha256
  --id ID     print a ready auth.apiKeys entry (YAML) for the principal ID
  -h, --help  show this help`;

const MAX_KEY_CHARS = 16_384;

async function readStdinLine(): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of Deno.stdin.readable) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes("\n") || text.length > MAX_KEY_CHARS) break;
  }
  return text.split(/\r?\n/)[0];
}

export async function hashKey(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    generate: { type: "boolean" },
    scrypt: { type: "boolean" },
    id: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HASH_KEY_HELP);
    return 0;
  }
  if (values.id !== undefined && !/^[A-Za-z0-9._@-]{1,100}$/.test(values.id)) {
    throw new UsageError(`--id must be 1 to 100 letters, digits, '.', '_', '@' or '-', got "${values.id}"`);
  }
  const kind: HashKind = values.scrypt ? "scrypt" : "sha256";
  const key = values.generate ? generateApiKey() : await readStdinLine();
  if (key.length === 0 || key.length > MAX_KEY_CHARS) {
    throw new UsageError(
      `give the key on standard input (1 to ${MAX_KEY_CHARS} characters), or use --generate for a new one`,
    );
  }
  if (/\s|,/.test(key)) {
    throw new UsageError("a key may not hold spaces or commas (it travels in a WebSocket subprotocol)");
  }
  const hash = await hashApiKey(key, kind);
  const presented = values.id === undefined ? "<id>.<key>" : `${values.id}.<key>`;
  if (values.generate) console.log(`key:  ${values.id === undefined ? key : `${values.id}.${key}`}`);
  if (values.id === undefined) {
    console.log(values.generate ? `hash: ${hash}` : hash);
    if (kind === "scrypt") {
      console.error(`note: clients present this key as ${presented}, with its auth.apiKeys id`);
    }
    return 0;
  }
  console.log(`# auth.apiKeys entry for ${values.id}; widen publish, subscribe and groups as needed
# clients present the key as ${presented}${kind === "sha256" ? " (or the key alone)" : ""}
- id: ${values.id}
  hash: "${hash}"
  publish: []
  subscribe: []
  groups: []`);
  return 0;
}
