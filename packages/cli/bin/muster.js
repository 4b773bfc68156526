#!/usr/bin/env node
// The installed `muster` command. It stays put while dist/ is built, so npm can link it at
// install time, before the build has run.
import '../dist/main.js';
