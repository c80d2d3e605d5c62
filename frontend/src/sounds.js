// The pages' sounds, synthesised once as small WAV files in memory (blob: URLs): nothing to
// fetch, nothing to cache, and they play through plain <audio> elements, which tests can
// read (`!audio.paused`) and browsers' autoplay rules treat the usual way.

const RATE = 16_000;

function wav(samples) {
  const data = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i += 1) data[i] = Math.max(-1, Math.min(1, samples[i])) * 0x7fff;
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => [...s].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + data.byteLength, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, RATE, true);
  header.setUint32(28, RATE * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, data.byteLength, true);
  return new Blob([header, data], { type: "audio/wav" });
}

/** Tones [frequency Hz, seconds] (0 Hz: silence), each with a short fade against clicks. */
function tones(parts, volume = 0.6) {
  const samples = [];
  for (const [frequency, seconds] of parts) {
    const n = Math.round(seconds * RATE);
    const fade = Math.min(n / 2, RATE * 0.01);
    for (let i = 0; i < n; i += 1) {
      const envelope = Math.min(1, i / fade, (n - i) / fade);
      samples.push(frequency ? volume * envelope * Math.sin((2 * Math.PI * frequency * i) / RATE) : 0);
    }
  }
  return URL.createObjectURL(wav(samples));
}

let alarmUrl = null;
let chimeUrl = null;
let warningUrl = null;

/** The ER alarm: two-tone, high-low-high, then a pause; meant to loop until acknowledged. */
export function alarmSound() {
  alarmUrl ??= tones([[988, 0.18], [0, 0.05], [740, 0.18], [0, 0.05], [988, 0.18], [0, 0.05], [740, 0.18], [0, 0.7]], 0.8);
  return alarmUrl;
}

/** A decision reached the crew: an approval (rising) … */
export function chimeSound() {
  chimeUrl ??= tones([[660, 0.15], [0, 0.03], [880, 0.15], [0, 0.03], [1320, 0.3]]);
  return chimeUrl;
}

/** … or a rejection, withdrawal or expiry (falling, lower). */
export function warningSound() {
  warningUrl ??= tones([[660, 0.2], [0, 0.05], [440, 0.35]]);
  return warningUrl;
}
