// create -> run_code -> chart -> files -> kill with the official @e2b/code-interpreter SDK.
// Reads E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY like any E2B program; prints one JSON
// report on stdout for tests/e2b/test_node_sdk.py;
// files go through envd (port 49983), the code through the code interpreter (49999).
import { Sandbox } from '@e2b/code-interpreter'

const report = {}
const sbx = await Sandbox.create({ timeoutMs: 120_000, metadata: { from: 'node' } })
report.sandboxId = sbx.sandboxId
try {
  const stdout = []
  const first = await sbx.runCode("print('hello from node'); 40 + 2", { onStdout: (m) => stdout.push(m.line) })
  report.text = first.text
  report.stdout = stdout
  report.executionCount = first.executionCount
  const js = await sbx.runCode('const xs = [1, 2, 3]; xs.map((x) => x * 2)', { language: 'js' })
  report.jsText = js.text
  const err = await sbx.runCode('1 / 0')
  report.error = err.error && { name: err.error.name, value: err.error.value }
  const chart = await sbx.runCode(
    "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5], label='n')\nplt.title('Bars')\nplt.show()"
  )
  const result = chart.results[0]
  report.chart = { type: result.chart?.type, title: result.chart?.title, elements: result.chart?.elements?.map((e) => [e.label, e.value]) }
  report.pngBytes = result.png ? Buffer.from(result.png, 'base64').length : 0
  const ctx = await sbx.createCodeContext({ cwd: '/tmp' })
  report.contextCwd = (await sbx.runCode('import os; os.getcwd()', { context: ctx })).text
  report.contexts = (await sbx.listCodeContexts()).map((c) => c.language)
  await sbx.files.write('/home/user/from-node.txt', 'written by node')
  report.fileRead = await sbx.files.read('/home/user/from-node.txt')
  report.fileSeenByCode = (await sbx.runCode("open('/home/user/from-node.txt').read()")).text
  report.listed = (await Sandbox.list().nextItems()).some((s) => s.sandboxId === sbx.sandboxId)
} finally {
  report.killed = await sbx.kill()
}
report.runningAfterKill = await sbx.isRunning()
console.log(JSON.stringify(report))
