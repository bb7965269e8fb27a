import { defineConfig } from 'cloudsocket';

export default defineConfig({
  app: './src/app.ts',
  cloudbase: {
    // envId: 'your-env-id',
    concurrency: 100,
    idleTimeout: 600,
  },
  aws: {
    region: 'us-east-1',
    stage: 'dev',
  },
});
