// Runs MicroPython's WebAssembly port (32-bit pointers, like the ESP8266)
// under Node for upynode_vboard.heap32. One job per input line (JSON):
//   {"wasm": "<path of micropython.mjs>", "heap": <initial heap bytes>,
//    "files": {"/path": "<base64>"}, "stages": [["name", "python code"], ...]}
// Each job gets a fresh interpreter. Each stage runs in its own runPython()
// call: the GC scans the C stack conservatively, so objects the current
// call still points at would stay alive. After each stage, in a call of its
// own: gc.collect(), then the bytes in use (gc.mem_alloc()) and the heap's
// size (mem_info()'s total: it grows on demand, and while a call runs it
// grows instead of collecting).
// One output line (JSON) per job: {"stages": [{"name", "alloc", "total",
// "out", "error"}]}; a stage that raised ends the job.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import path from "node:path";

const MARK = "\x01heap32";
// mem_free() counts what the heap may still grow by: its size is mem_info()'s "GC: total:"
// One collection is not enough: measured, after a cycle of the node 7.4 KB
// of its garbage outlived the first gc.collect() and went in a second one
// (a deeper stack scrubbed first changed nothing): so a call that collects,
// then the call that collects again and counts.
const COLLECT = "import gc\ngc.collect()\ndel gc\n";
// qstr_info(): the interned strings' pools, which grow a chunk at a time
const MEASURE = "import gc, micropython\ngc.collect()\nmicropython.mem_info()\nmicropython.qstr_info()\n" +
  "print('\\x01heap32', gc.mem_alloc())\ndel gc, micropython\n";
let loaders = {};

async function runJob(job) {
  if (!loaders[job.wasm]) loaders[job.wasm] = (await import(pathToFileURL(job.wasm).href)).loadMicroPython;
  let out = [];
  const mp = await loaders[job.wasm]({ heapsize: job.heap || 1048576, stdout: (l) => out.push(l), stderr: (l) => out.push(l) });
  for (const [name, data] of Object.entries(job.files || {})) {
    mp.FS.mkdirTree(path.posix.dirname(name));
    mp.FS.writeFile(name, Buffer.from(data, "base64"));
  }
  const stages = [];
  for (const [name, code] of [["start", ""]].concat(job.stages)) {
    out = [];
    const st = { name };
    const t0 = Date.now();
    try {
      if (code) mp.runPython(code);
    } catch (e) {
      st.error = String(e.message || e).trim().split("\n").slice(-3).join(" | ");
    }
    st.ms = Date.now() - t0;
    st.out = out;
    out = [];
    try {
      mp.runPython(COLLECT);
      out = [];
      mp.runPython(MEASURE);
      const m = out.find((l) => l.startsWith(MARK));
      const t = out.map((l) => /GC: total: (\d+)/.exec(l)).find((x) => x);
      if (m) st.alloc = Number(m.slice(MARK.length).trim());
      if (t) st.total = Number(t[1]);
      const q = out.map((l) => /n_total_bytes=(\d+)/.exec(l)).find((x) => x);
      if (q) st.qstr = Number(q[1]);
    } catch (e) {
      st.error = st.error || "measuring: " + String(e.message || e);
    }
    stages.push(st);
    if (st.error) break;
  }
  return { stages };
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let res;
  try {
    res = await runJob(JSON.parse(line));
  } catch (e) {
    res = { error: String(e.stack || e) };
  }
  process.stdout.write(JSON.stringify(res) + "\n");
}
