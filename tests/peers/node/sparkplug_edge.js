// A scripted Sparkplug B edge node: payloads encoded by Eclipse Tahu's sparkplug-payload,
// published with mqtt.js (implementations we did not write), for the agent's Sparkplug tests.
//
//   node sparkplug_edge.js BROKER_URL CLIENT_ID [WILL_TOPIC WILL_PAYLOAD_JSON]
//
// The optional will is an encoded NDEATH the broker publishes when this process dies.
// Each stdin line is a JSON object {"topic": ..., "payload": {...}, "qos": 0}; the payload is
// in sparkplug-payload's form ({timestamp, seq, metrics: [{name, alias, type, value}]}) and is
// answered with `sent TOPIC` once published. Commands the node receives (NCMD/DCMD) are
// decoded and printed as `CMD TOPIC JSON`. `READY` says the node is connected and subscribed.
"use strict";

const readline = require("readline");
const mqtt = require("mqtt");
const sparkplug = require("sparkplug-payload").get("spBv1.0");

const [url, clientId, willTopic, willJson] = process.argv.slice(2);

const options = { clientId, clean: true, reconnectPeriod: 0 };
if (willTopic) {
  options.will = {
    topic: willTopic,
    payload: Buffer.from(sparkplug.encodePayload(JSON.parse(willJson))),
    qos: 1,
    retain: false,
  };
}

const client = mqtt.connect(url, options);

client.on("error", (err) => {
  process.stderr.write(`mqtt error: ${err}\n`);
  process.exit(1);
});

client.on("message", (topic, message) => {
  const decoded = sparkplug.decodePayload(message);
  const json = JSON.stringify(decoded, (_key, value) =>
    value !== null && typeof value === "object" && value.low !== undefined && value.high !== undefined
      ? Number(value.toString())
      : value,
  );
  process.stdout.write(`CMD ${topic} ${json}\n`);
});

client.on("connect", () => {
  client.subscribe(["spBv1.0/+/NCMD/#", "spBv1.0/+/DCMD/#"], { qos: 0 }, (err) => {
    if (err) {
      process.stderr.write(`subscribe failed: ${err}\n`);
      process.exit(1);
    }
    process.stdout.write("READY\n");
  });
});

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const { topic, payload, qos } = JSON.parse(line);
  const bytes = Buffer.from(sparkplug.encodePayload(payload));
  client.publish(topic, bytes, { qos: qos || 0 }, (err) => {
    if (err) {
      process.stdout.write(`error ${topic} ${err}\n`);
    } else {
      process.stdout.write(`sent ${topic}\n`);
    }
  });
});
rl.on("close", () => client.end(false, () => process.exit(0)));
process.on("SIGTERM", () => process.exit(0)); // no clean disconnect: the broker sends the will
