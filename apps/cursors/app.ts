/** The module a project builds to run the cursors app (its config's `app`). */
import { createCursorsApp } from './index.js';

export default createCursorsApp();
