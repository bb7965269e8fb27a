/** `cloudsocket/cloudbase`: the CloudBase HTTP function adapter. */
export { CloudbaseServer, createCloudbaseServer, type CloudbaseServerOptions } from './server.js';
export { startCloudbaseFunction, type CloudbaseFunctionOptions } from './function.js';
export { readCloudbaseSettings, type CloudbaseSettings, type CloudbaseSettingsOverrides } from './settings.js';
export { WsTransport } from './ws-transport.js';
export { cloudbaseUserAuth, type CloudbaseUser, type CloudbaseUserAuthOptions } from './user-auth.js';
