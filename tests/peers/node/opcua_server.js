// A small OPC UA server built on node-opcua (an implementation we did not write), for the
// interoperability tests of the agent's OPC UA connector.
//
//   node opcua_server.js PORT PKI_DIR
//
// Namespace 1 holds an object "Line1" (NodeId ns=1;s=Line1) with variables whose NodeIds are
// ns=1;s=Line1.<Name>, and a child object "Line1/Oven" with a variable "Temperature" that the
// tests reach by browse path (1:Line1/1:Oven/1:Temperature). Security: None only, anonymous.
//
// Control on stdin, one command per line:
//   set NAME JSON_VALUE   change a variable (e.g. `set Speed 99.5`), answered `ok NAME`
//   bad NAME              give a variable a Bad status (keeping its value), answered `ok NAME`
// The line `READY PORT` on stdout says the server is listening.
"use strict";

const readline = require("readline");
const {
  OPCUAServer,
  OPCUACertificateManager,
  Variant,
  DataType,
  DataValue,
  StatusCodes,
  MessageSecurityMode,
  SecurityPolicy,
} = require("node-opcua");

const port = parseInt(process.argv[2], 10);
const pkiDir = process.argv[3];

const VARIABLES = {
  Speed: { dataType: DataType.Double, value: 120.5 },
  GoodCount: { dataType: DataType.UInt32, value: 1200 },
  Running: { dataType: DataType.Boolean, value: true },
  State: { dataType: DataType.Int32, value: 1 },
  Recipe: { dataType: DataType.String, value: "choc-bar-40g" },
};

async function main() {
  const certificateManager = new OPCUACertificateManager({
    rootFolder: pkiDir,
    automaticallyAcceptUnknownCertificate: true,
  });
  const server = new OPCUAServer({
    port,
    hostname: "127.0.0.1",
    resourcePath: "/",
    serverCertificateManager: certificateManager,
    securityModes: [MessageSecurityMode.None],
    securityPolicies: [SecurityPolicy.None],
    allowAnonymous: true,
    buildInfo: { productName: "edge-agent-test-peer", buildNumber: "1" },
  });
  await server.initialize();

  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.getOwnNamespace();
  const line = ns.addObject({
    organizedBy: addressSpace.rootFolder.objects,
    browseName: "Line1",
    nodeId: "s=Line1",
  });
  const nodes = {};
  for (const [name, spec] of Object.entries(VARIABLES)) {
    nodes[name] = ns.addVariable({
      componentOf: line,
      browseName: name,
      nodeId: `s=Line1.${name}`,
      dataType: DataType[spec.dataType],
      value: new Variant({ dataType: spec.dataType, value: spec.value }),
    });
    nodes[name].peerType = spec.dataType;
  }
  const oven = ns.addObject({ componentOf: line, browseName: "Oven", nodeId: "s=Line1.Oven" });
  nodes.Temperature = ns.addVariable({
    componentOf: oven,
    browseName: "Temperature",
    nodeId: "s=Line1.Oven.Temperature",
    dataType: "Double",
    value: new Variant({ dataType: DataType.Double, value: 172.5 }),
  });
  nodes.Temperature.peerType = DataType.Double;

  await server.start();
  process.stdout.write(`READY ${port}\n`);

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (text) => {
    const [command, name, ...rest] = text.trim().split(" ");
    const node = nodes[name];
    if (!node) {
      process.stdout.write(`error unknown variable ${name}\n`);
      return;
    }
    try {
      if (command === "set") {
        const value = JSON.parse(rest.join(" "));
        node.setValueFromSource(new Variant({ dataType: node.peerType, value }), StatusCodes.Good);
      } else if (command === "bad") {
        const value = node.readValue().value.value;
        node.setValueFromSource(new Variant({ dataType: node.peerType, value }), StatusCodes.BadSensorFailure);
      } else {
        process.stdout.write(`error unknown command ${command}\n`);
        return;
      }
    } catch (err) {
      process.stdout.write(`error ${err}\n`);
      return;
    }
    process.stdout.write(`ok ${name}\n`);
  });
  rl.on("close", async () => {
    await server.shutdown(0);
    process.exit(0);
  });
  const stop = async () => {
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
