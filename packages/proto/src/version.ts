/** The version every Muster component reports; agents send it in their facts. */
export const MUSTER_VERSION = '0.1.0';
