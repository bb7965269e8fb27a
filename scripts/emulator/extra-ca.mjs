// Node reads NODE_EXTRA_CA_CERTS once, when a process starts; an execution
// environment here is a worker thread of a process already running, so the
// variable a Lambda function's Node would honour is applied by hand: every
// TLS connection that brings no CA of its own trusts the file's
// certificates besides Node's bundled ones.
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const file = process.env.NODE_EXTRA_CA_CERTS;
if (file) {
  const secureContext = tls.createSecureContext({ ca: [...tls.rootCertificates, readFileSync(file, 'utf8')] });
  const connect = tls.connect;
  tls.connect = function (...args) {
    const options = args.find((arg) => arg !== null && typeof arg === 'object');
    if (options && options.ca === undefined && options.secureContext === undefined) options.secureContext = secureContext;
    return connect.apply(this, args);
  };
}
