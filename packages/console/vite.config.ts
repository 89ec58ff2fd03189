import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The console is served by coffre-server on the same origin (no CORS, cookies SameSite=Strict).
// `npm run dev` proxies the API to a local server for development.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
  server: { proxy: { '/api': { target: 'https://127.0.0.1:8443', secure: false } } },
});
