/** The built-in chat room; AUTH_TOKEN, when set, is the token clients must pass as `?token=`. */
import { chatFromEnv } from 'cloudsocket/chat';

export default chatFromEnv();
