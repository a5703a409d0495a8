/**
 * The stream the embedded broker hands to aedes in place of a raw socket, so
 * that one connection can neither make the broker buffer without bound nor
 * hold up the others:
 *
 * - Inbound (THREATS 31, 33): every chunk goes through a packet-size guard
 *   before aedes' parser sees it; a packet whose fixed header announces more
 *   than `maxPacketSizeBytes`, or a malformed Remaining Length, closes the
 *   connection, and no byte of that packet's body is passed on.
 * - Outbound (THREATS 32): writes go straight to the socket, so aedes never
 *   waits on one client's 'drain' (with aedes' own back-pressure a frozen
 *   subscriber holds delivery slots shared by every client until its
 *   `drainTimeout`). Instead, what the socket has not yet handed to the kernel
 *   is capped: past `maxQueuedBytes`, the client is not reading, and the
 *   connection is closed.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { createPacketSizeGuard } from './packet-size-guard.ts';

export type ConnectionDropReason = 'oversize' | 'malformed-length' | 'slow-consumer';

export interface GuardedConnectionOptions {
  maxPacketSizeBytes: number;
  maxQueuedBytes: number;
  /** Told once why a connection was closed by a guard (for logs and metrics). */
  onDrop?: (reason: ConnectionDropReason, message: string) => void;
}

/** Wraps `socket`; destroying either one destroys the other. */
export function guardConnection(socket: Socket, options: GuardedConnectionOptions): Duplex {
  const guard = createPacketSizeGuard({ maxPacketSizeBytes: options.maxPacketSizeBytes });
  let dropped = false;

  const connection: Duplex = new Duplex({
    // aedes treats write() === false as "wait for drain"; queued bytes are
    // bounded by maxQueuedBytes below instead.
    writableHighWaterMark: options.maxQueuedBytes,
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      if (socket.destroyed) return done();
      socket.write(chunk);
      // THREATS 32: what the kernel would not take is a client not reading.
      if (socket.writableLength > options.maxQueuedBytes) {
        drop('slow-consumer', `${socket.writableLength} bytes queued for a client not reading`);
      }
      done();
    },
    final(done) {
      socket.end(done);
    },
    destroy(error, done) {
      socket.destroy();
      done(error);
    },
  });

  function drop(reason: ConnectionDropReason, message: string): void {
    if (dropped) return;
    dropped = true;
    options.onDrop?.(reason, message);
    connection.destroy(new Error(message));
  }

  socket.on('data', (chunk: Buffer) => {
    if (connection.destroyed) return;
    const verdict = guard.push(chunk);
    // THREATS 31: refused before the chunk reaches the MQTT parser's buffer.
    if (!verdict.ok) return drop(verdict.reason, verdict.message);
    if (!connection.push(chunk)) socket.pause();
  });
  socket.on('end', () => connection.push(null));
  socket.on('error', (error) => connection.destroy(error));
  socket.on('close', () => connection.destroy());
  return connection;
}
