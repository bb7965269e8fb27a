// Preloaded (NODE_OPTIONS --require) into a CloudBase function that a local run
// starts, never into the built artifact. The runner holds the only other end
// of the pipe on fd CLOUDSOCKET_PARENT_PIPE_FD; when the runner dies, even by
// SIGKILL, the pipe reads end-of-file and the function stops as CloudBase
// stops it (SIGTERM: its sockets close with 1012) instead of keeping the port.
'use strict';
const { Socket } = require('node:net');

const fd = Number(process.env.CLOUDSOCKET_PARENT_PIPE_FD);
// The function's own child processes inherit neither the fd nor the duty.
delete process.env.CLOUDSOCKET_PARENT_PIPE_FD;
if (Number.isInteger(fd) && fd > 2) {
  const pipe = new Socket({ fd, readable: true, writable: false });
  let gone = false;
  const parentGone = () => {
    if (gone) return;
    gone = true;
    pipe.destroy();
    // No listener means the function is already stopping (its handler runs once) or never
    // started: a second SIGTERM would kill it before its sockets are closed.
    if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM');
    // A function that does not stop by itself is not left behind either.
    setTimeout(() => process.exit(1), 5000).unref();
  };
  pipe.on('end', parentGone);
  pipe.on('error', parentGone);
  pipe.resume();
  // Watching for the runner's death must not keep the function alive by itself.
  pipe.unref();
}
