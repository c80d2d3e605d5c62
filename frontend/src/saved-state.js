// The last known hospital list and bed state, kept by the page in IndexedDB (a few hundred
// KB: too much for localStorage's quota to be comfortable) so a reload without network opens
// with the last values, marked as old. One object store, one record per key.

const DB_NAME = "weer";
const STORE = "state";

function open() {
  return new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new Error("no IndexedDB"));
      return;
    }
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

let database = null;
function db() {
  database ??= open();
  return database;
}

export async function loadSaved(key) {
  try {
    const store = (await db()).transaction(STORE, "readonly").objectStore(STORE);
    return await new Promise((resolve, reject) => {
      const request = store.get(key);
      request.onsuccess = () => resolve(request.result ?? null);
      request.onerror = () => reject(request.error);
    });
  } catch {
    return null;
  }
}

export async function save(key, value) {
  try {
    const transaction = (await db()).transaction(STORE, "readwrite");
    transaction.objectStore(STORE).put(value, key);
    await new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onerror = () => reject(transaction.error);
    });
  } catch {
    /* private mode or quota: the page still works, it just cannot restore offline */
  }
}

/** Call `save(key, snapshot())` at most every `intervalMs`, and when the page is hidden. */
export function keepSaved(key, snapshot, { intervalMs = 5000 } = {}) {
  let timer = null;
  const flush = () => {
    timer = null;
    save(key, snapshot());
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush();
  });
  return () => {
    timer ??= setTimeout(flush, intervalMs);
  };
}
