// snapshot_duckdb.mjs - the DuckDB half of the snapshot benchmark (issue 5)
// and the table maker.  Run through bench/run_snapshot_bench.sh, which
// installs @duckdb/node-api (scripts/parquet-interop.sh install, into
// build/npm) and sets AKIDB_NPM_DIR.
//
//   time AKIDB_PARQUET N REPS VEC_SUM WORKDIR
//       Load AkiDB's export of the n rows (all seven snapshot columns, the
//       saved graph included, so both sides write the same table) into an
//       in-memory DuckDB table t: not timed.  Then, with SET threads=1,
//       REPS times each (median):
//         copy       COPY t TO 'duckdb-N.parquet' (FORMAT parquet, COMPRESSION zstd)
//         fsync      fsync of that file right after the COPY (DuckDB's COPY
//                    does not fsync; AkiDB's writer does), timed separately
//         read_agg   SELECT count(*), sum(list_sum(vector)) FROM read_parquet(..)
//                    (decodes every vector; checked against VEC_SUM)
//         read_ctas  CREATE TABLE r AS SELECT * FROM read_parquet(..)
//                    (decodes and materialises every column)
//         akidb_agg  read_agg on AkiDB's own file
//       Prints `RESULT kind=duckdb ...` lines (wall and process CPU time).
//   table RAW
//       The markdown tables from the RESULT lines in RAW (bench_snapshot's
//       and this script's).

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const sqlStr = (s) => `'${s.replaceAll("'", "''")}'`;

function median(v) {
    const s = [...v].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function cpuSeconds() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

async function timeDuckDB(akidbFile, n, reps, vecSum, workdir) {
    const NPM_DIR = process.env.AKIDB_NPM_DIR;
    if (!NPM_DIR) {
        console.error('snapshot_duckdb.mjs: run it through bench/run_snapshot_bench.sh');
        process.exit(2);
    }
    const requireNpm = createRequire(path.join(path.resolve(NPM_DIR), 'node_modules', 'x.js'));
    const { DuckDBInstance } = requireNpm('@duckdb/node-api');
    const inst = await DuckDBInstance.create(':memory:', {
        autoinstall_known_extensions: 'false', autoload_known_extensions: 'false',
        threads: '1',
    });
    const con = await inst.connect();
    const rows = async (sql) => (await con.runAndReadAll(sql)).getRows();
    await con.run('SET threads = 1');
    const [[version]] = await rows('SELECT version()');
    const [[threads]] = await rows("SELECT current_setting('threads')");
    console.log(`duckdb ${version}, threads=${threads}, n=${n}, reps=${reps}`);

    const mine = path.join(workdir, `duckdb-${n}.parquet`);
    const ak = sqlStr(akidbFile), dk = sqlStr(mine);
    let t0 = performance.now();
    await con.run(`CREATE TABLE t AS SELECT * FROM read_parquet(${ak})`);
    const [[count0]] = await rows('SELECT count(*) FROM t');
    if (Number(count0) !== n) throw new Error(`loaded ${count0} rows from ${akidbFile}, expected ${n}`);
    console.log(`loaded t from ${akidbFile} in ${((performance.now() - t0) / 1e3).toFixed(2)} s (not timed)`);

    // One timed step: wall and process CPU seconds.
    const timed = async (fn) => {
        const c0 = cpuSeconds();
        const w0 = performance.now();
        const out = await fn();
        return { s: (performance.now() - w0) / 1e3, cpu: cpuSeconds() - c0, out };
    };
    const checkAgg = (what, r) => {
        const [cnt, sum] = r[0];
        if (Number(cnt) !== n || Math.abs(Number(sum) - vecSum) > 1e-3 * Math.max(1, Math.abs(vecSum)))
            throw new Error(`${what}: count ${cnt}, sum ${sum}; expected ${n}, ${vecSum}`);
    };
    const AGG = (f) => `SELECT count(*), sum(list_sum(vector)) FROM read_parquet(${f})`;
    const res = { copy: [], copy_cpu: [], fsync: [], read_agg: [], read_agg_cpu: [],
                  read_ctas: [], read_ctas_cpu: [], akidb_agg: [], akidb_agg_cpu: [] };
    for (let r = 1; r <= reps; r++) {
        fs.rmSync(mine, { force: true });
        const c = await timed(() => con.run(
            `COPY t TO ${dk} (FORMAT parquet, COMPRESSION zstd)`));
        const f = await timed(() => {
            const fd = fs.openSync(mine, 'r+');
            fs.fsyncSync(fd);
            fs.closeSync(fd);
        });
        res.copy.push(c.s); res.copy_cpu.push(c.cpu); res.fsync.push(f.s);
        console.log(`RESULT kind=duckdb_rep op=copy n=${n} rep=${r} seconds=${c.s.toFixed(4)} ` +
                    `cpu_seconds=${c.cpu.toFixed(4)} fsync_seconds=${f.s.toFixed(4)}`);
    }
    const bytes = fs.statSync(mine).size;
    for (let r = 1; r <= reps; r++) {
        const a = await timed(() => rows(AGG(dk)));
        checkAgg('read_agg', a.out);
        await con.run('DROP TABLE IF EXISTS r');
        const m = await timed(() => con.run(`CREATE TABLE r AS SELECT * FROM read_parquet(${dk})`));
        const [[cnt]] = await rows('SELECT count(*) FROM r');
        if (Number(cnt) !== n) throw new Error(`read_ctas: ${cnt} rows, expected ${n}`);
        await con.run('DROP TABLE r');
        const k = await timed(() => rows(AGG(ak)));
        checkAgg('akidb_agg', k.out);
        res.read_agg.push(a.s); res.read_agg_cpu.push(a.cpu);
        res.read_ctas.push(m.s); res.read_ctas_cpu.push(m.cpu);
        res.akidb_agg.push(k.s); res.akidb_agg_cpu.push(k.cpu);
        console.log(`RESULT kind=duckdb_rep op=read n=${n} rep=${r} agg_seconds=${a.s.toFixed(4)} ` +
                    `ctas_seconds=${m.s.toFixed(4)} akidb_agg_seconds=${k.s.toFixed(4)}`);
    }
    const med = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
    console.log(`RESULT kind=duckdb n=${n} reps=${reps} version=${version} threads=${threads} ` +
                Object.entries(med).map(([k, v]) => `${k}_s=${v.toFixed(4)}`).join(' ') +
                ` bytes=${bytes}`);
}

// ---- the tables -------------------------------------------------------------

function parseRaw(file) {
    const out = { akidb: new Map(), duckdb: new Map() };
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        if (!line.startsWith('RESULT ')) continue;
        const kv = Object.fromEntries(line.slice(7).split(' ').map((t) => {
            const i = t.indexOf('=');
            return [t.slice(0, i), t.slice(i + 1)];
        }));
        if (kv.kind === 'akidb' || kv.kind === 'duckdb') out[kv.kind].set(Number(kv.n), kv);
    }
    return out;
}

function table(file) {
    const { akidb, duckdb } = parseRaw(file);
    const sizes = [...akidb.keys()].sort((a, b) => a - b);
    if (!sizes.length) throw new Error(`${file}: no RESULT kind=akidb lines`);
    const A = (n, k) => Number(akidb.get(n)[k]);
    const D = (n, k) => (duckdb.has(n) ? Number(duckdb.get(n)[k]) : NaN);
    const ms = (s) => (Number.isFinite(s) ? (s * 1e3).toFixed(s < 1 ? 1 : 0) : 'n/a');
    const mb = (b) => (b / 1e6).toFixed(1);
    const x = (v) => (Number.isFinite(v) ? v.toFixed(2) + 'x' : 'n/a');
    const nm = (n) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));
    const dim = A(sizes[0], 'dim');
    const head = (first) => `| ${first} | ` + sizes.map((n) => `${nm(n)} x ${dim}`).join(' | ') +
        ' |\n|---|' + sizes.map(() => '---:|').join('');
    const row = (label, f) => `| ${label} | ` + sizes.map(f).join(' | ') + ' |';
    const wallCpu = (s, c) => `${ms(s)} (${ms(c)})`;
    const out = [];

    out.push('Times are medians of ' + A(sizes[0], 'reps') + ' repetitions in ms, wall clock, with ' +
             'process CPU time in parentheses; one thread on both sides.', '');
    out.push(head('write'));
    out.push(row('AkiDB `akidb_snapshot_create` (local store)', (n) => wallCpu(A(n, 'create_s'), A(n, 'create_cpu_s'))));
    out.push(row('AkiDB `akidb_export_parquet` (one file, fsync)', (n) => wallCpu(A(n, 'export_s'), A(n, 'export_cpu_s'))));
    out.push(row('  disk alone: one file of the snapshot\'s size, write + fsync', (n) => `${ms(A(n, 'disk_s'))} (fsync ${ms(A(n, 'disk_fsync_s'))})`));
    out.push(row('DuckDB `COPY ... (FORMAT parquet, COMPRESSION zstd)`', (n) => wallCpu(D(n, 'copy_s'), D(n, 'copy_cpu_s'))));
    out.push(row('DuckDB COPY + fsync of the file', (n) => ms(D(n, 'copy_s') + D(n, 'fsync_s'))));
    out.push(row('**create vs DuckDB COPY** (DuckDB time / AkiDB time)', (n) => x(D(n, 'copy_s') / A(n, 'create_s'))));
    out.push(row('export vs DuckDB COPY + fsync (like for like)', (n) => x((D(n, 'copy_s') + D(n, 'fsync_s')) / A(n, 'export_s'))));
    out.push(row('CPU: DuckDB COPY / AkiDB create', (n) => x(D(n, 'copy_cpu_s') / A(n, 'create_cpu_s'))));
    out.push('');
    out.push(head('read'));
    out.push(row('AkiDB `akidb_snapshot_restore` (ready to search)', (n) => wallCpu(A(n, 'restore_s'), A(n, 'restore_cpu_s'))));
    out.push(row('  of it: the closing checkpoint (timed alone)', (n) => ms(A(n, 'ckpt_s'))));
    out.push(row('  restore - checkpoint (read, verify, decode, graph)', (n) => ms(A(n, 'restore_s') - A(n, 'ckpt_s'))));
    out.push(row('DuckDB `CREATE TABLE AS SELECT * FROM read_parquet` (own file)', (n) => wallCpu(D(n, 'read_ctas_s'), D(n, 'read_ctas_cpu_s'))));
    out.push(row('DuckDB `count(*), sum(list_sum(vector))` (own file)', (n) => wallCpu(D(n, 'read_agg_s'), D(n, 'read_agg_cpu_s'))));
    out.push(row('DuckDB the same query on AkiDB\'s file', (n) => wallCpu(D(n, 'akidb_agg_s'), D(n, 'akidb_agg_cpu_s'))));
    out.push(row('**restore vs DuckDB CREATE TABLE AS** (DuckDB / AkiDB)', (n) => x(D(n, 'read_ctas_s') / A(n, 'restore_s'))));
    out.push(row('restore - checkpoint vs DuckDB CREATE TABLE AS', (n) => x(D(n, 'read_ctas_s') / (A(n, 'restore_s') - A(n, 'ckpt_s')))));
    out.push(row('CPU: DuckDB CREATE TABLE AS / AkiDB restore', (n) => x(D(n, 'read_ctas_cpu_s') / A(n, 'restore_cpu_s'))));
    out.push('');
    out.push(head('size'));
    out.push(row('float32 vectors alone (n x dim x 4 B)', (n) => `${mb(A(n, 'raw_vector_bytes'))} MB`));
    out.push(row('AkiDB snapshot (all columns, graph included)', (n) => `${mb(A(n, 'snap_bytes'))} MB`));
    out.push(row('DuckDB zstd Parquet of the same table', (n) => (duckdb.has(n) ? `${mb(D(n, 'bytes'))} MB` : 'n/a')));
    out.push(row('JSON lines (id, external_id, vector %.9g, metadata)', (n) => `${mb(A(n, 'json_bytes'))} MB`));
    out.push(row('**JSON / snapshot**', (n) => x(A(n, 'json_bytes') / A(n, 'snap_bytes'))));
    out.push(row('DuckDB file / snapshot', (n) => x(D(n, 'bytes') / A(n, 'snap_bytes'))));
    out.push('');
    out.push(head('setup (not timed above)'));
    out.push(row('HNSW build (M, ef_construction)', (n) => `${A(n, 'build_s').toFixed(0)} s (${A(n, 'm')}, ${A(n, 'efc')})`));
    const dv = duckdb.size ? [...duckdb.values()][0].version : 'n/a';
    out.push('', `DuckDB ${dv} (@duckdb/node-api), \`SET threads=1\`.`, '');

    // Targets: judged on the figures above.
    const t = [];
    const met = (ok) => (ok === null ? 'n/a' : ok ? 'met' : '**missed**');
    const n10 = sizes.includes(10000) ? 10000 : null;
    t.push('| target | measured | |', '|---|---|---|');
    if (n10) {
        t.push(`| 10k x ${dim} create < 150 ms | ${ms(A(n10, 'create_s'))} ms (CPU ${ms(A(n10, 'create_cpu_s'))} ms) | ${met(A(n10, 'create_s') < 0.150)} |`);
        t.push(`| 10k x ${dim} restore < 150 ms, ready to search | ${ms(A(n10, 'restore_s'))} ms (CPU ${ms(A(n10, 'restore_cpu_s'))} ms) | ${met(A(n10, 'restore_s') < 0.150)} |`);
    }
    for (const n of sizes) {
        const r = A(n, 'json_bytes') / A(n, 'snap_bytes');
        t.push(`| ${nm(n)}: JSON / snapshot size >= 2x | ${x(r)} | ${met(r >= 2)} |`);
    }
    for (const n of sizes) {
        if (!duckdb.has(n)) continue;
        const w = D(n, 'copy_s') / A(n, 'create_s');
        const rd = D(n, 'read_ctas_s') / A(n, 'restore_s');
        const wc = D(n, 'copy_cpu_s') / A(n, 'create_cpu_s');
        const rdc = D(n, 'read_ctas_cpu_s') / A(n, 'restore_cpu_s');
        t.push(`| ${nm(n)}: create at least as fast as DuckDB COPY (DuckDB time / AkiDB time) | ${x(w)} (CPU ${x(wc)}) | ${met(w >= 1)} |`);
        t.push(`| ${nm(n)}: restore at least as fast as DuckDB reading (CREATE TABLE AS) | ${x(rd)} (CPU ${x(rdc)}) | ${met(rd >= 1)} |`);
    }
    out.push(...t);
    return out.join('\n') + '\n';
}

const [cmd, ...args] = process.argv.slice(2);
switch (cmd) {
case 'time':
    if (args.length !== 5) {
        console.error('usage: snapshot_duckdb.mjs time AKIDB_PARQUET N REPS VEC_SUM WORKDIR');
        process.exit(2);
    }
    await timeDuckDB(args[0], Number(args[1]), Number(args[2]), Number(args[3]), args[4]);
    break;
case 'table':
    process.stdout.write(table(args[0]));
    break;
default:
    console.error('usage: snapshot_duckdb.mjs time AKIDB_PARQUET N REPS VEC_SUM WORKDIR | table RAW');
    process.exit(2);
}
