import { defineConfig } from 'vite';

// The console is static files the admin plane serves: hashed names under assets/, no inline
// script (the CSP forbids it), nothing fetched from elsewhere at run time.
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
