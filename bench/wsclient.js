'use strict';
// A lean RFC 6455 client for the load generator: it must cost less per
// received message than the servers it measures. Compared with `ws`, it reads
// with net's `onread` into one shared buffer (no per-read allocation, no
// stream machinery, no per-message event or Buffer) and hands each frame to
// the caller as (buffer, start, end), valid only during the call.
// No extensions (so no compression), no fragmented sends; it answers pings
// and the closing handshake.

const crypto = require('crypto');
const net = require('net');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const READ_BUFFER = Buffer.allocUnsafe(1 << 16); // shared: frames are consumed synchronously
const HEADER_END = Buffer.from('\r\n\r\n');

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

class LeanSocket {
  // onFrame(buf, start, end, opcode) for text/binary messages; callbacks:
  // onOpen(), onError(err), onClose(code)
  constructor(url, protocol, handlers) {
    const u = new URL(url);
    this.h = handlers;
    this.state = CONNECTING;
    this.partial = null;
    this.fragments = null;
    this.fragmentOpcode = 0;
    this.protocol = protocol;
    this.key = crypto.randomBytes(16).toString('base64');
    this.timer = setTimeout(() => this.fail(new Error('opening handshake timed out')), handlers.timeoutMs || 15000);
    const path = u.pathname + u.search;
    const request =
      `GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n` +
      (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
      '\r\n';
    this.sock = net.connect({
      host: u.hostname,
      port: Number(u.port),
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n, buf) => this.onBytes(buf, n) },
    });
    this.sock.on('connect', () => this.sock.write(request));
    this.sock.on('error', (err) => this.fail(err));
    this.sock.on('close', () => {
      const was = this.state;
      this.state = CLOSED;
      clearTimeout(this.timer);
      if (was !== CLOSED) this.h.onClose(this.closeCode || 1006);
    });
  }

  fail(err) {
    if (this.state === CLOSED) return;
    clearTimeout(this.timer);
    const wasConnecting = this.state === CONNECTING;
    this.state = CLOSED;
    this.sock.destroy();
    this.h.onError(err, wasConnecting);
  }

  onBytes(buf, n) {
    let data = buf;
    let i = 0;
    let end = n;
    if (this.partial !== null) {
      data = Buffer.concat([this.partial, buf.subarray(0, n)]);
      this.partial = null;
      end = data.length;
    }
    if (this.state === CONNECTING) {
      const h = data.indexOf(HEADER_END);
      if (h === -1 || h >= end) {
        this.partial = Buffer.from(data.subarray(0, end));
        return;
      }
      if (!this.checkHandshake(data.toString('latin1', 0, h))) return;
      i = h + 4;
      this.state = OPEN;
      clearTimeout(this.timer);
      this.h.onOpen();
    }
    while (end - i >= 2) {
      const b0 = data[i];
      const b1 = data[i + 1];
      let len = b1 & 0x7f;
      let hl = 2;
      if (len === 126) {
        if (end - i < 4) break;
        len = (data[i + 2] << 8) | data[i + 3];
        hl = 4;
      } else if (len === 127) {
        if (end - i < 10) break;
        len = data.readUInt32BE(i + 6) + data.readUInt32BE(i + 2) * 2 ** 32;
        hl = 10;
      }
      if (b1 & 0x80) return this.fail(new Error('server frame is masked'));
      if (end - i - hl < len) break;
      const p = i + hl;
      const q = p + len;
      i = q;
      const opcode = b0 & 0x0f;
      if (opcode === 1 || opcode === 2) {
        if (b0 & 0x80) this.h.onFrame(data, p, q, opcode);
        else {
          this.fragments = [Buffer.from(data.subarray(p, q))];
          this.fragmentOpcode = opcode;
        }
      } else if (opcode === 0) {
        if (this.fragments === null) return this.fail(new Error('unexpected continuation frame'));
        this.fragments.push(Buffer.from(data.subarray(p, q)));
        if (b0 & 0x80) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = null;
          this.h.onFrame(whole, 0, whole.length, this.fragmentOpcode);
        }
      } else if (opcode === 9) {
        this.write(0xa, data.subarray(p, q));
      } else if (opcode === 8) {
        this.closeCode = len >= 2 ? (data[p] << 8) | data[p + 1] : 1005;
        if (this.state === OPEN) this.write(0x8, data.subarray(p, Math.min(q, p + 2)));
        this.state = CLOSING;
        this.sock.end();
        return;
      }
      // opcode 10 (pong): nothing to do
      if (this.state === CLOSED) return;
    }
    if (i < end) this.partial = Buffer.from(data.subarray(i, end));
  }

  checkHandshake(head) {
    const lines = head.split('\r\n');
    if (!/^HTTP\/1\.1 101 /.test(lines[0])) {
      this.fail(new Error(`upgrade refused: ${lines[0]}`));
      return false;
    }
    const headers = {};
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    const accept = crypto.createHash('sha1').update(this.key + GUID).digest('base64');
    if (headers['sec-websocket-accept'] !== accept) {
      this.fail(new Error('bad Sec-WebSocket-Accept'));
      return false;
    }
    if (this.protocol && headers['sec-websocket-protocol'] !== this.protocol) {
      this.fail(new Error(`server did not accept subprotocol ${this.protocol}`));
      return false;
    }
    return true;
  }

  // One masked frame, FIN set.
  write(opcode, payload) {
    if (this.state === CLOSED) return;
    const len = payload.length;
    const hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(hl + 4 + len);
    frame[0] = 0x80 | opcode;
    if (hl === 2) frame[1] = 0x80 | len;
    else if (hl === 4) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(len, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(0, 2);
      frame.writeUInt32BE(len, 6);
    }
    crypto.randomFillSync(frame, hl, 4);
    for (let k = 0; k < len; k++) frame[hl + 4 + k] = payload[k] ^ frame[hl + (k & 3)];
    this.sock.write(frame);
  }

  send(text) {
    this.write(0x1, Buffer.from(text));
  }

  // Closing handshake; resolves when the TCP connection is gone.
  close() {
    return new Promise((resolve) => {
      if (this.state === CLOSED) return resolve();
      this.sock.once('close', resolve);
      if (this.state === OPEN) {
        this.state = CLOSING;
        this.write(0x8, Buffer.from([0x03, 0xe8])); // 1000
      } else {
        this.sock.destroy();
      }
    });
  }
}

module.exports = { LeanSocket, OPEN, CLOSED };
