// A Sparkplug B host that only listens: messages decoded by Eclipse Tahu's sparkplug-payload
// (an implementation we did not write), to check what the agent's edge node publishes.
//
//   node sparkplug_host.js BROKER_URL TOPIC_FILTER
//
// Prints `READY` once subscribed, then `MSG TOPIC JSON` per message (64-bit integers as numbers, signed
// for the signed datatypes).
"use strict";

const mqtt = require("mqtt");
const sparkplug = require("sparkplug-payload").get("spBv1.0");

const [url, filter] = process.argv.slice(2);
const client = mqtt.connect(url, { clean: true, reconnectPeriod: 0 });

client.on("error", (err) => {
  process.stderr.write(`mqtt error: ${err}\n`);
  process.exit(1);
});

client.on("message", (topic, message) => {
  let json;
  try {
    const decoded = sparkplug.decodePayload(message);
    for (const metric of decoded.metrics || []) {
      // signed integers travel as two's complement in an unsigned field: read them as the type says
      const v = metric.value;
      if (/^Int(8|16|32|64)$/.test(metric.type) && v !== null && typeof v === "object" && v.toSigned) {
        metric.value = Number(v.toSigned().toString());
      }
    }
    json = JSON.stringify(decoded, (_key, value) =>
      value !== null && typeof value === "object" && value.low !== undefined && value.high !== undefined
        ? Number(value.toString())
        : value,
    );
  } catch (err) {
    json = JSON.stringify({ error: String(err) });
  }
  process.stdout.write(`MSG ${topic} ${json}\n`);
});

client.on("connect", () => {
  client.subscribe(filter, { qos: 1 }, (err) => {
    if (err) {
      process.stderr.write(`subscribe failed: ${err}\n`);
      process.exit(1);
    }
    process.stdout.write("READY\n");
  });
});
