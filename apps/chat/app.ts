/** The module `cloudsocket build` bundles when a project names no app of its own. */
import { chatFromEnv } from './index.js';

export default chatFromEnv();
