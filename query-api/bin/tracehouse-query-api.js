#!/usr/bin/env node
// The installed command. It is a file of the source tree, not of dist/, so that
// `npm ci` links it before anything is built; it runs the built query API.
import '../dist/bin.js';
