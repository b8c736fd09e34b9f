// Runs an ONNX model exported by fmnist in onnxruntime (the npm package
// onnxruntime-node) on raw float32 images and writes the probabilities.
//   node ort_run.js MODEL.onnx IMAGES.f32 N OUT.f32 [THREADS] [ROUNDS]
// IMAGES.f32: N * 784 little-endian floats (pixel / 255), as the graph's
// "input" takes them; OUT.f32 gets N * 10 floats of "probabilities". With
// ROUNDS > 0 it also times that many runs of the whole batch after one
// untimed run, and prints "ort_img_per_s=R" (the median), after a first line
// naming onnxruntime's version. Exit 3 when
// onnxruntime-node cannot be loaded (the caller skips), 1 on any other
// failure.
'use strict';
const fs = require('fs');
let ort;
try {
    ort = require('onnxruntime-node');
} catch (e) {
    console.error('onnxruntime-node is not installed: ' + e.message.split('\n')[0]);
    process.exit(3);
}
async function main() {
    const [model, images, nArg, out, threadsArg, roundsArg] = process.argv.slice(2);
    const n = parseInt(nArg, 10), threads = parseInt(threadsArg || '1', 10);
    const rounds = parseInt(roundsArg || '0', 10);
    const buf = fs.readFileSync(images);
    if (buf.length !== n * 784 * 4) throw new Error(`${images}: ${buf.length} bytes, expected ${n * 784 * 4}`);
    const x = new Float32Array(buf.buffer, buf.byteOffset, n * 784);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    console.log(`onnxruntime ${require('onnxruntime-node/package.json').version}`);
    const feeds = { input: new ort.Tensor('float32', x, [n, 1, 28, 28]) };
    let result = await session.run(feeds);
    const p = result.probabilities.data;
    fs.writeFileSync(out, Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    if (rounds > 0) {
        const times = [];
        for (let r = 0; r < rounds; r++) {
            const t0 = process.hrtime.bigint();
            result = await session.run(feeds);
            times.push(Number(process.hrtime.bigint() - t0) / 1e9);
        }
        times.sort((a, b) => a - b);
        console.log(`ort_img_per_s=${(n / times[Math.floor(rounds / 2)]).toFixed(2)}`);
    }
}
main().catch((e) => {
    console.error(e.message);
    process.exit(1);
});
