// The penguin web page: the form's values become one tf.Example (the model's raw input), sent to the
// TF Serving REST API of `headwater serve` (or TF Serving itself) as {"b64": ...}; the answer of the
// classify_species signature is shown as a table. No libraries: the few protobuf rules it needs are here.
"use strict";

// How the model's schema types each feature (schema.pbtxt written by Ingest): float, int64 or bytes.
const FEATURES = {
  island: "bytes", sex: "bytes",
  bill_length_mm: "float", bill_depth_mm: "float", flipper_length_mm: "int64", body_mass_g: "int64",
};

function varint(value) {  // unsigned LEB128 of a BigInt (int64 values are two's complement)
  let v = BigInt.asUintN(64, BigInt(value));
  const out = [];
  while (v >= 128n) { out.push(Number(v & 127n) | 128); v >>= 7n; }
  out.push(Number(v));
  return out;
}

function field(number, bytes) {  // a length-delimited field: tag, length, bytes
  return [...varint((number << 3) | 2), ...varint(bytes.length), ...bytes];
}

function featureBytes(kind, values) {
  if (kind === "bytes") {  // Feature.bytes_list (1) -> BytesList.value (1), one field per value
    return field(1, values.flatMap((v) => field(1, [...new TextEncoder().encode(v)])));
  }
  if (kind === "float") {  // Feature.float_list (2) -> FloatList.value (1), packed little-endian float32
    const packed = new Uint8Array(4 * values.length);
    const view = new DataView(packed.buffer);
    values.forEach((v, i) => view.setFloat32(4 * i, v, true));
    return field(2, field(1, [...packed]));
  }
  return field(3, field(1, values.flatMap((v) => varint(v))));  // Feature.int64_list (3), packed varints
}

// Example.features (1) -> Features.feature (1): map entries {key (1), value (2)}.
function encodeExample(features) {
  const entries = Object.entries(features).flatMap(([name, [kind, values]]) =>
    field(1, [...field(1, [...new TextEncoder().encode(name)]), ...field(2, featureBytes(kind, values))]));
  return new Uint8Array(field(1, entries));
}

function base64(bytes) {
  let text = "";
  bytes.forEach((b) => { text += String.fromCharCode(b); });
  return btoa(text);
}

function readForm(form) {
  const features = {};
  for (const [name, kind] of Object.entries(FEATURES)) {
    const raw = form.elements[name].value.trim();
    if (raw === "") continue;  // missing: the model imputes it, as it does for the training data
    if (kind === "bytes") features[name] = [kind, [raw]];
    else if (kind === "int64") features[name] = [kind, [Math.round(Number(raw))]];
    else features[name] = [kind, [Number(raw)]];
  }
  return features;
}

async function predict(event) {
  event.preventDefault();
  const form = event.target;
  const status = document.getElementById("status");
  const table = document.getElementById("result");
  const model = new URLSearchParams(location.search).get("model") || form.dataset.model;
  const request = {
    signature_name: "classify_species",
    instances: [{ b64: base64(encodeExample(readForm(form))) }],
  };
  status.className = "";
  status.textContent = "asking the model…";
  try {
    const response = await fetch(`v1/models/${encodeURIComponent(model)}:predict`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    const { classes, scores } = answer.predictions[0];
    const rows = classes.map((name, i) => [name, scores[i]]).sort((a, b) => b[1] - a[1]);
    const body = table.querySelector("tbody");
    body.replaceChildren(...rows.map(([name, score], i) => {
      const tr = document.createElement("tr");
      if (i === 0) tr.className = "best";
      for (const text of [name, `${(100 * score).toFixed(1)} %`]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
    table.hidden = false;
    status.textContent = `most likely: ${rows[0][0]}`;
  } catch (error) {
    table.hidden = true;
    status.className = "error";
    status.textContent = `the model server said: ${error.message}`;
  }
}

if (typeof document !== "undefined") {
  document.getElementById("penguin").addEventListener("submit", predict);
}
if (typeof module !== "undefined") {
  module.exports = { encodeExample, base64 };  // for headwater's tests (node)
}
