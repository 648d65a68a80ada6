/** The shipped worker thread file: sessions on their planned devices, nothing else. */
import { createWorker } from './session-host.js';

export default createWorker();
