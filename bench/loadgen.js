'use strict';
// The load generator of the benchmark suite: one Node process (pinned by the
// harness to core 0) speaking to the server under test through the lean
// WebSocket client in wsclient.js, with one adapter per wire protocol (raw broadcast, Socket.IO's engine.io v4
// websocket transport, Parley v1 JSON). Every target is driven by the same
// code, so the per-message cost of the load generator is the same for all.
//
// Usage: node bench/loadgen.js '<spec JSON>'
// It prints one JSON object per line on stdout ({"phase": ...}); after a phase
// marked "wait": true it reads one line on stdin ("next") before going on, so
// that the harness can read the server's CPU time and RSS at that point.
//
// Latency: every posted text carries its send time (microseconds since this
// process started, in base 26 as letters between two '~', so no contact-detail
// filter sees a number); receivers subtract it from their own clock.

const crypto = require('crypto');
const readline = require('readline');
const { performance } = require('perf_hooks');
const { LeanSocket, CLOSED } = require('./wsclient');

const spec = JSON.parse(process.argv[2]);
const P = spec.params;

// ---------------------------------------------------------------- output ---

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const stdinLines = [];
let stdinWaiter = null;
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (stdinWaiter) {
    const w = stdinWaiter;
    stdinWaiter = null;
    w(line);
  } else {
    stdinLines.push(line);
  }
});

async function phase(name, data, wait) {
  emit(Object.assign({ phase: name, wait: !!wait }, data || {}));
  if (!wait) return null;
  if (stdinLines.length) return stdinLines.shift();
  return new Promise((resolve) => {
    stdinWaiter = resolve;
  });
}

function fail(message) {
  emit({ phase: 'error', error: String(message) });
  process.exit(1);
}

// A hard bound on the whole process, whatever happens.
setTimeout(() => fail(`load generator exceeded its ${spec.max_seconds}s bound`), spec.max_seconds * 1000).unref();

// ------------------------------------------------------------ timestamps ---

const nowUs = () => Math.floor(performance.now() * 1000);

function encodeTs(us) {
  let s = '';
  do {
    s = String.fromCharCode(97 + (us % 26)) + s;
    us = Math.floor(us / 26);
  } while (us > 0);
  return s;
}

// Letters, spaces and punctuation only: no digits, '@', '~', quotes or backslashes.
const FILLER =
  'Is this still available? Could you ship it to Montreal this week, and is the ' +
  'price negotiable at all? It looks great in the photos, thanks for answering. ';

function makeText() {
  const head = '~' + encodeTs(nowUs()) + '~ ';
  let text = head;
  while (text.length < spec.text_bytes) text += FILLER;
  return text.slice(0, spec.text_bytes);
}

// ------------------------------------------------------------ statistics ---

class Samples {
  constructor(capacity) {
    this.a = new Uint32Array(Math.max(16, capacity));
    this.n = 0;
  }
  add(v) {
    if (this.n === this.a.length) {
      const b = new Uint32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v < 0 ? 0 : v;
  }
  summary() {
    if (this.n === 0) return null;
    const s = this.a.subarray(0, this.n).sort();
    const q = (p) => s[Math.min(this.n - 1, Math.floor(p * this.n))] / 1000;
    return { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: s[this.n - 1] / 1000, n: this.n };
  }
}

const stats = {
  deliveries: 0,
  deliveryBytes: 0,
  firstSendUs: 0,
  lastDeliveryUs: 0,
  lat: null, // Samples, set by the workload
  ackLat: null,
  acks: 0,
  errors: 0,
  firstError: null,
  otherFrames: 0,
};

function recordError(detail) {
  stats.errors++;
  if (stats.firstError === null) stats.firstError = String(detail).slice(0, 300);
}

// ---------------------------------------------------------------- tokens ---

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const JWT_HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

function mintToken(sub, name) {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const body = b64url(JSON.stringify({ sub, name, locale: 'en', exp }));
  const signing = JWT_HEADER + '.' + body;
  const sig = crypto.createHmac('sha256', spec.jwt_secret).update(signing).digest('base64url');
  return signing + '.' + sig;
}

// ----------------------------------------------------------- connections ---

const SIO_MSG = 0x32; // '2' after '4': a Socket.IO EVENT packet
const PARLEY_REPLY = Buffer.from('{"id":');
const PARLEY_EVENT = Buffer.from('"event":"message"');

// Reads the send time between the first two '~' of a delivered frame buf[p:q].
function deliveredAt(buf, p, q) {
  let i = buf.indexOf(0x7e, p) + 1;
  if (i === 0 || i > q) return -1;
  let v = 0;
  let b;
  while (i < q && (b = buf[i++]) !== 0x7e) v = v * 26 + (b - 97);
  return b === 0x7e ? v : -1;
}

// Does buf[p:q] contain needle?
function contains(buf, p, q, needle) {
  const i = buf.indexOf(needle, p);
  return i !== -1 && i + needle.length <= q;
}

const allConns = [];
// Several hubs (parley-redis-2hubs): connections alternate between them, so in
// rooms of two (buyer 2j, seller 2j+1) every room has a member on each hub.
const URLS = spec.urls && spec.urls.length ? spec.urls : [spec.url];

class Conn {
  // user: {id, name}; onDelivery(conn, sentUs), onAck(conn, reqId) set by workloads
  constructor(user) {
    this.user = user;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map(); // request id -> resolve (handshake steps only)
    this.postSent = new Map(); // parley post request id -> send time (us)
    this.received = 0;
    this.onDelivery = null;
    this.onAck = null;
    this.sioReady = null;
    this.url = URLS[allConns.length % URLS.length];
    allConns.push(this);
  }

  open() {
    return new Promise((resolve, reject) => {
      const t = spec.target;
      let url = this.url + '/';
      if (t === 'socketio') url = this.url + '/socket.io/?EIO=4&transport=websocket';
      const onFrame =
        t === 'raw' ? (b, p, q) => this.onRaw(b, p, q)
          : t === 'socketio' ? (b, p, q) => this.onSio(b, p, q)
            : (b, p, q) => this.onParley(b, p, q);
      this.ws = new LeanSocket(url, t === 'parley' ? 'parley.v1.json' : null, {
        onFrame,
        onError: (err, wasConnecting) => {
          if (wasConnecting) reject(err);
          else recordError(`socket error: ${err.message}`);
        },
        onClose: (code) => {
          if (!closing) recordError(`closed by server: ${code}`);
        },
        onOpen: () => {
          if (t === 'raw') resolve();
          else if (t === 'socketio') this.sioReady = resolve;
          else {
            this.request({ op: 'connect', token: mintToken(this.user.id, this.user.name) }).then(resolve, reject);
          }
        },
      });
    });
  }

  // ---- raw: {"op":"joined"} or a broadcast frame {"op":"msg",...}
  onRaw(buf, p, q) {
    if (buf[p + 7] === 0x6d) return this.delivered(buf, p, q);
    const r = this.pending.get(0);
    if (r) {
      this.pending.delete(0);
      r(null);
    } else this.other();
  }

  // ---- Socket.IO: engine.io packet type, then socket.io packet type
  onSio(buf, p, q) {
    const c0 = buf[p];
    if (c0 === 0x34) {
      const c1 = buf[p + 1];
      if (c1 === SIO_MSG) return this.delivered(buf, p, q);
      if (c1 === 0x33) {
        // ACK "43<id>[...]"
        let id = 0;
        let i = p + 2;
        let b;
        while (i < q && (b = buf[i++]) >= 0x30 && b <= 0x39) id = id * 10 + (b - 0x30);
        const r = this.pending.get(id);
        if (r) {
          this.pending.delete(id);
          r(null);
        }
        return;
      }
      if (c1 === 0x30) {
        // CONNECT acknowledged
        const r = this.sioReady;
        this.sioReady = null;
        if (r) r();
        return;
      }
      return this.other();
    }
    if (c0 === 0x32) return this.ws.send('3'); // engine.io ping -> pong
    if (c0 === 0x30) return this.ws.send('40'); // engine.io open -> socket.io connect
    this.other();
  }

  // ---- Parley v1 JSON: replies {"id":N,...}, events {"event":...}
  onParley(buf, p, q) {
    if (buf.compare(PARLEY_REPLY, 0, PARLEY_REPLY.length, p, p + PARLEY_REPLY.length) !== 0) {
      if (contains(buf, p, q, PARLEY_EVENT)) return this.delivered(buf, p, q);
    }
    const text = buf.toString('utf8', p, q);
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return recordError(`unparsable frame: ${text.slice(0, 100)}`);
    }
    if (typeof msg.id === 'number') {
      const r = this.pending.get(msg.id);
      if (r) {
        this.pending.delete(msg.id);
        return r(msg);
      }
      const sent = this.postSent.get(msg.id);
      if (sent !== undefined) {
        this.postSent.delete(msg.id);
        if (msg.error) recordError(`post refused: ${JSON.stringify(msg.error)}`);
        else if (stats.ackLat) stats.ackLat.add(nowUs() - sent);
        stats.acks++;
        if (this.onAck) this.onAck(this);
        return;
      }
    }
    if (msg.event === 'message') return this.delivered(buf, p, q);
    if (msg.error) return recordError(`error frame: ${JSON.stringify(msg.error)}`);
    this.other();
  }

  other() {
    stats.otherFrames++;
  }

  delivered(buf, p, q) {
    const sent = deliveredAt(buf, p, q);
    const now = nowUs();
    this.received++;
    stats.deliveries++;
    stats.deliveryBytes += q - p;
    stats.lastDeliveryUs = now;
    if (sent >= 0 && stats.lat) stats.lat.add(now - sent);
    if (this.onDelivery) this.onDelivery(this, sent);
  }

  // Parley request resolved by its reply; refuses on an error reply.
  request(frame) {
    const id = this.nextId++;
    frame.id = id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (msg) => {
        if (msg.error) reject(new Error(`${frame.op} refused: ${JSON.stringify(msg.error)}`));
        else resolve(msg.result);
      });
      this.ws.send(JSON.stringify(frame));
    });
  }

  join(room) {
    const t = spec.target;
    if (t === 'parley') return this.request({ op: 'subscribe', room });
    return new Promise((resolve) => {
      if (t === 'raw') {
        this.pending.set(0, resolve);
        this.ws.send(JSON.stringify({ op: 'join', room }));
      } else {
        const id = this.nextId++;
        this.pending.set(id, resolve);
        this.ws.send(`42${id}${JSON.stringify(['join', room])}`);
      }
    });
  }

  post(room, text) {
    const t = spec.target;
    if (stats.firstSendUs === 0) stats.firstSendUs = nowUs();
    if (t === 'raw') {
      this.ws.send(`{"op":"msg","room":"${room}","text":"${text}"}`);
    } else if (t === 'socketio') {
      this.ws.send(`42["msg","${room}","${text}"]`);
    } else {
      const id = this.nextId++;
      this.postSent.set(id, nowUs());
      this.ws.send(
        `{"id":${id},"op":"post","room":"${room}","text":"${text}","client_msg_id":"c${id}"}`,
      );
    }
  }
}

// Opens conns with at most `concurrency` handshakes in flight, each joining
// its room(s); resolves when all are in, rejects on the first failure.
function openAll(conns, rooms, concurrency) {
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    let failed = false;
    const start = () => {
      if (failed || next >= conns.length) return;
      const c = conns[next];
      const roomList = rooms[next];
      next++;
      c.open()
        .then(async () => {
          for (const r of roomList) await c.join(r);
        })
        .then(
          () => {
            done++;
            if (done === conns.length) resolve();
            else start();
          },
          (err) => {
            failed = true;
            reject(err);
          },
        );
    };
    if (conns.length === 0) resolve();
    for (let i = 0; i < Math.min(concurrency, conns.length); i++) start();
  });
}

let closing = false;

async function closeAll() {
  closing = true;
  await Promise.race([
    Promise.all(
      allConns.map((c) => (c.ws ? c.ws.close() : null)),
    ),
    new Promise((resolve) => setTimeout(resolve, 5000)),
  ]);
}

function waitUntil(predicate, timeoutS) {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutS * 1000;
    const check = () => {
      if (predicate()) return resolve(true);
      if (Date.now() > deadline) return resolve(false);
      setTimeout(check, 5);
    };
    check();
  });
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function deliveryReport(expected, complete) {
  const spanUs = Math.max(1, stats.lastDeliveryUs - stats.firstSendUs);
  const out = {
    complete,
    deliveries: stats.deliveries,
    expected_deliveries: expected,
    duration_s: spanUs / 1e6,
    deliveries_per_s: stats.deliveries / (spanUs / 1e6),
    avg_frame_bytes: stats.deliveries ? stats.deliveryBytes / stats.deliveries : 0,
    latency_ms: stats.lat ? stats.lat.summary() : null,
    acks: stats.acks,
    errors: stats.errors,
    first_error: stats.firstError,
    other_frames: stats.otherFrames,
  };
  if (stats.ackLat && stats.ackLat.n) out.ack_latency_ms = stats.ackLat.summary();
  return out;
}

// ------------------------------------------------------------- workloads ---

const ACK_BY_REPLY = spec.target === 'parley'; // baselines: the poster's own copy is its ack

function pairsLayout(n) {
  // n connections in rooms of two: conn 2j is the buyer b<j>, 2j+1 the seller s<j>
  const conns = [];
  const rooms = [];
  for (let i = 0; i < n; i++) {
    const j = i >> 1;
    const id = (i & 1 ? 's' : 'b') + j;
    conns.push(new Conn({ id, name: 'user_' + id }));
    rooms.push([`order:bo${j}`]);
  }
  return { conns, rooms };
}

async function fanOut() {
  // W1: one room, P.watchers watchers, one poster with P.window posts in flight.
  const room = 'listing:bw1';
  const conns = [];
  const rooms = [];
  for (let i = 0; i < P.watchers; i++) {
    conns.push(new Conn({ id: 'w' + i, name: 'watcher_' + i }));
    rooms.push([room]);
  }
  const poster = new Conn({ id: 'p0', name: 'poster_zero' });
  await openAll(conns, rooms, spec.connect_concurrency);
  await openAll([poster], [[room]], 1);

  const receivers = P.watchers + 1;
  const expected = P.messages * receivers;
  stats.lat = new Samples(expected);
  if (ACK_BY_REPLY) stats.ackLat = new Samples(P.messages);
  await phase('ready', { connections: receivers }, true);

  const cpu0 = cpuSeconds();
  let sent = 0;
  let acked = 0;
  const sendOne = () => {
    sent++;
    poster.post(room, makeText());
  };
  const ack = () => {
    acked++;
    if (sent < P.messages) sendOne();
  };
  if (ACK_BY_REPLY) poster.onAck = ack;
  else poster.onDelivery = ack;
  for (let i = 0; i < Math.min(P.window, P.messages); i++) sendOne();
  const complete = await waitUntil(() => stats.deliveries >= expected && (!ACK_BY_REPLY || acked >= P.messages), P.timeout_s);
  const report = deliveryReport(expected, complete);
  report.posts = sent;
  report.loadgen_cpu_s_self = cpuSeconds() - cpu0;
  await phase('done', report, true);
}

async function paced() {
  // W2/W5: P.connections in rooms of two, each posting P.posts_per_conn,
  // P.rate posts/s in total (open loop, round robin over the connections).
  const { conns, rooms } = pairsLayout(P.connections);
  await openAll(conns, rooms, spec.connect_concurrency);
  const total = P.connections * P.posts_per_conn;
  const expected = total * 2;
  stats.lat = new Samples(expected);
  if (ACK_BY_REPLY) stats.ackLat = new Samples(total);
  await phase('ready', { connections: conns.length }, true);

  const cpu0 = cpuSeconds();
  const t0 = nowUs();
  const intervalUs = 1e6 / P.rate;
  let next = 0;
  let maxLagUs = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const now = nowUs();
      while (next < total) {
        const due = t0 + next * intervalUs;
        if (due > now) break;
        if (now - due > maxLagUs) maxLagUs = now - due;
        const c = next % P.connections;
        conns[c].post(rooms[c][0], makeText());
        next++;
      }
      if (next < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const sendSpanS = (nowUs() - t0) / 1e6;
  const complete = await waitUntil(
    () => stats.deliveries >= expected && (!ACK_BY_REPLY || stats.acks >= total),
    P.drain_timeout_s,
  );
  const report = deliveryReport(expected, complete);
  report.posts = total;
  report.target_rate = P.rate;
  report.achieved_send_rate = total / sendSpanS;
  report.max_send_lag_ms = maxLagUs / 1000;
  report.loadgen_cpu_s_self = cpuSeconds() - cpu0;
  await phase('done', report, true);
}

async function durablePosts() {
  // W4: P.connections in rooms of two, each keeping P.window posts in flight
  // until it has P.posts_per_conn acknowledged: the acknowledged-post ceiling.
  // Only Parley acknowledges a post after storing it; the baselines store nothing.
  if (!ACK_BY_REPLY) fail('W4 measures durably acknowledged posts: Parley only');
  const { conns, rooms } = pairsLayout(P.connections);
  await openAll(conns, rooms, spec.connect_concurrency);
  const total = P.connections * P.posts_per_conn;
  stats.lat = new Samples(total * 2);
  stats.ackLat = new Samples(total);
  await phase('ready', { connections: conns.length }, true);

  const cpu0 = cpuSeconds();
  const sentBy = new Map();
  let acked = 0;
  let lastAckUs = 0;
  const t0 = nowUs();
  const send = (c) => {
    const k = sentBy.get(c) || 0;
    if (k >= P.posts_per_conn) return;
    sentBy.set(c, k + 1);
    c.post(rooms[c.index][0], makeText());
  };
  conns.forEach((c, i) => {
    c.index = i;
    c.onAck = (conn) => {
      acked++;
      lastAckUs = nowUs();
      send(conn);
    };
  });
  for (const c of conns) for (let w = 0; w < P.window; w++) send(c);
  const acksIn = await waitUntil(() => acked >= total, P.timeout_s);
  const spanS = Math.max(1, lastAckUs - t0) / 1e6;
  // Both members of each room must get every post, too (within a short drain).
  const complete = acksIn && (await waitUntil(() => stats.deliveries >= total * 2, 10));
  const report = deliveryReport(total * 2, complete);
  report.posts = total;
  report.acked_posts = acked;
  report.acked_posts_per_s = acked / spanS;
  report.loadgen_cpu_s_self = cpuSeconds() - cpu0;
  await phase('done', report, true);
}

async function idle() {
  // W3: P.connections authenticated, subscribed, idle connections; the first
  // P.warm are opened before the baseline RSS is read.
  const conns = [];
  const rooms = [];
  for (let i = 0; i < P.connections; i++) {
    conns.push(new Conn({ id: 'i' + i, name: 'idle_' + i }));
    rooms.push([`listing:bw3-${i % P.rooms}`]);
  }
  await openAll(conns.slice(0, P.warm), rooms.slice(0, P.warm), spec.connect_concurrency);
  await phase('warm', { connections: P.warm }, true);
  const t0 = performance.now();
  await openAll(conns.slice(P.warm), rooms.slice(P.warm), spec.connect_concurrency);
  const connectS = (performance.now() - t0) / 1000;
  const n = P.connections - P.warm;
  await phase(
    'connected',
    {
      connections: P.connections,
      connect_s: connectS,
      connects_per_s: n / connectS,
      errors: stats.errors,
      first_error: stats.firstError,
    },
    true,
  );
  // Idle: the harness measures the server over its hold period, then says next.
  await phase('idle_done', { errors: stats.errors, first_error: stats.firstError, other_frames: stats.otherFrames }, true);
}

const WORKLOADS = { W1: fanOut, W2: paced, W5: paced, W4: durablePosts, W3: idle };

(async () => {
  const run = WORKLOADS[spec.workload];
  if (!run) fail(`unknown workload ${spec.workload}`);
  try {
    await run();
  } catch (err) {
    fail(err && err.stack ? err.stack : err);
  }
  await closeAll();
  emit({ phase: 'closed', wait: false });
  process.exit(0);
})();
