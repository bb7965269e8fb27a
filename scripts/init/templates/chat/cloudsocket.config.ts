import { defineConfig } from 'cloudsocket';

export default defineConfig({
  app: './src/app.ts',
  // The built-in chat page, served by both targets.
  page: 'chat',
  cloudbase: {
    path: '/chat',
  },
});
