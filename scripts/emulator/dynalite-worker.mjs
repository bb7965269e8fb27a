// dynalite on its own thread, so that its work (every item a Query reads is
// decoded and filtered in JavaScript) never holds up the thread that serves
// the WebSocket connections and the AWS APIs. The parent learns the endpoint
// from the first message, is told the operation of every request (for the
// bench's counts, except the calls below, which the parent counts as it sends them), and asks for a stop, answered once dynalite has closed.
// Besides its port, dynalite takes calls as messages ({type: 'call'}, answered
// {type: 'answer'}): the emulator's own DynamoDB proxy sends them, which spares
// each call an HTTP exchange on loopback (a client here, a server there).
// Plain JavaScript because worker threads do not inherit the TypeScript loader.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite');
keySecondaryIndexesByWholeTableKey(require('dynalite/db/index.js'));
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
// dynalite's request handler, which createServer registered before any listener of ours.
const handleRequest = server.listeners('request')[0];

// A request is dynalite's from the end of its body (when dynalite starts on it) until
// it is answered: one whose client went away halfway through is never started, and one
// whose client left while dynalite works on it still writes to the database.
let working = 0;
let drained;
server.on('request', (request, response) => {
  reportRequest(request.headers['x-amz-target']);
  // dynalite throws from a request's 'error' listener (a client that aborts mid-body), which
  // would end this thread and every table with it; the abort itself needs no answer.
  request.removeAllListeners('error');
  request.on('error', () => undefined);
  let started = false;
  const end = response.end.bind(response);
  response.end = (...args) => {
    if (started) {
      started = false;
      if (--working === 0) drained?.();
    }
    return end(...args);
  };
  // Before dynalite's own listener, which may answer at once.
  request.prependOnceListener('end', () => {
    started = true;
    working++;
  });
});

let stopped = false;

function reportRequest(target) {
  if (typeof target === 'string') parentPort.postMessage({ type: 'request', operation: target.slice(target.indexOf('.') + 1) });
}

/**
 * A call as dynalite's handler sees an HTTP request: the same headers, the
 * same body, and a response that records what the handler sets on it (it
 * sets only the status, headers and one body) and posts it back.
 */
function call({ id, headers, body }) {
  if (stopped) return parentPort.postMessage({ type: 'answer', id, failed: 'dynalite is stopping' });
  working++;
  const request = Object.assign(new EventEmitter(), { method: 'POST', url: '/', headers });
  const answerHeaders = {};
  const response = {
    statusCode: 200,
    setHeader(name, value) {
      answerHeaders[name.toLowerCase()] = String(value);
    },
    end(text) {
      if (--working === 0) drained?.();
      parentPort.postMessage({ type: 'answer', id, status: this.statusCode, headers: answerHeaders, body: text ?? '' });
    },
  };
  handleRequest(request, response);
  request.emit('data', Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  request.emit('end');
}

parentPort.on('message', async (message) => {
  if (message.type === 'call') return call(message);
  if (message.type !== 'stop') return;
  stopped = true;
  // Once its server is closed, dynalite closes its database as soon as the last connection
  // goes (clients that leave close theirs), so the server is closed only when nothing is
  // being worked on: a request still halfway would write to a closed database and throw.
  while (working > 0) await new Promise((resolve) => (drained = resolve));
  await new Promise((resolve) => {
    server.close(() => resolve());
    // Idle keep-alive sockets of SDK clients would hold the close open.
    server.closeAllConnections();
  });
  parentPort.postMessage({ type: 'stopped' });
});

server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'listening', port: server.address().port }));

/**
 * dynalite keys an index entry by the index key and only the first six hex
 * digits of a hash of the item's table key (db/index.js, createIndexKey and
 * hashPrefix: "for now just first six chars"). Two items with the same index
 * key whose table keys hash alike share one entry: the later write hides the
 * other item from every Query of the index, and deleting either removes both.
 * With 24 bits, a room of 1000 members on the byRoom index has such a pair about
 * 3 times in 100 (a broadcast then reaches 999); DynamoDB has no such limit.
 * Here the entry ends with the whole table key, so entries are as distinct as
 * items. The actions call these through the module's exports, so replacing
 * them there is enough; the database is in memory, so no old entries remain.
 */
function keySecondaryIndexesByWholeTableKey(db) {
  db.createIndexKey = (item, table, keySchema) => db.createKey(item, table, keySchema) + db.createKey(item, table);
  db.updateIndexes = (store, table, existingItem, item, done) => {
    if (!existingItem && !item) return done();
    const puts = [];
    const deletes = [];
    const tableKeys = table.KeySchema.map((key) => key.AttributeName);
    for (const indexType of ['Local', 'Global']) {
      for (const index of table[`${indexType}SecondaryIndexes`] ?? []) {
        const indexDb = store.getIndexDb(indexType, table.TableName, index.IndexName);
        const indexKeys = index.KeySchema.map((key) => key.AttributeName);
        const indexed = (candidate) => candidate && indexKeys.every((name) => candidate[name] != null);
        let key = null;
        if (indexed(item)) {
          const projected = index.Projection.ProjectionType === 'ALL' ? item : project(item, [...indexKeys, ...tableKeys, ...(index.Projection.NonKeyAttributes ?? [])]);
          key = db.createIndexKey(projected, table, index.KeySchema);
          puts.push((callback) => indexDb.put(key, projected, callback));
        }
        if (indexed(existingItem)) {
          const existingKey = db.createIndexKey(existingItem, table, index.KeySchema);
          if (existingKey !== key) deletes.push((callback) => indexDb.del(existingKey, callback));
        }
      }
    }
    // As dynalite does: the old entries go before the new ones are written.
    inParallel(deletes, (error) => (error ? done(error) : inParallel(puts, done)));
  };
}

function project(item, names) {
  const projected = Object.create(null);
  for (const name of names) projected[name] = item[name];
  return projected;
}

/** Runs callback-style tasks together; `done` gets the first error, or nothing once all have finished. */
function inParallel(tasks, done) {
  let pending = tasks.length;
  let failed = false;
  if (pending === 0) return done();
  for (const task of tasks) {
    task((error) => {
      if (failed) return;
      if (error) {
        failed = true;
        return done(error);
      }
      if (--pending === 0) done();
    });
  }
}
