// envd (port 49983) through the official JavaScript SDK: commands, files, pty, watchDir.
// Reads E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY like any E2B program; prints one JSON report
// on stdout for tests/e2b/test_envd_node.py.
import { Sandbox } from 'e2b'

const report = {}
const sbx = await Sandbox.create({ timeoutMs: 120_000 })
try {
  const run = await sbx.commands.run('echo out; echo err >&2; id -un')
  report.run = { stdout: run.stdout, stderr: run.stderr, exitCode: run.exitCode }
  try {
    await sbx.commands.run('exit 4')
  } catch (e) {
    report.failedExit = e.exitCode
  }
  const bg = await sbx.commands.run('cat', { background: true, stdin: true })
  report.listed = (await sbx.commands.list()).some((p) => p.pid === bg.pid)
  await sbx.commands.sendStdin(bg.pid, 'piped\n')
  await sbx.commands.closeStdin(bg.pid)
  report.bgStdout = (await bg.wait()).stdout

  await sbx.files.write('/home/user/js/one.txt', 'from js')
  report.read = await sbx.files.read('/home/user/js/one.txt')
  await sbx.files.write([{ path: 'js/two.txt', data: 'two' }, { path: 'js/three.txt', data: 'three' }])
  report.names = (await sbx.files.list('js')).map((e) => e.name).sort()
  report.exists = [await sbx.files.exists('js/two.txt'), await sbx.files.exists('js/none')]
  report.info = (await sbx.files.getInfo('js/three.txt')).size
  await sbx.files.rename('js/two.txt', 'js/2.txt')
  await sbx.files.remove('js/three.txt')
  report.after = (await sbx.files.list('js')).map((e) => e.name).sort()
  report.madeDir = [await sbx.files.makeDir('js/d'), await sbx.files.makeDir('js/d')]

  const events = []
  const watch = await sbx.files.watchDir('js', (e) => events.push([e.name, e.type]))
  await sbx.files.write('js/watched.txt', 'w')
  for (let i = 0; i < 100 && !events.some(([n]) => n === 'watched.txt'); i++) await new Promise((r) => setTimeout(r, 50))
  await watch.stop()
  report.watched = events.filter(([n]) => n === 'watched.txt').map(([, t]) => t)

  let screen = ''
  const decoder = new TextDecoder()
  const term = await sbx.pty.create({ rows: 24, cols: 80, onData: (d) => { screen += decoder.decode(d) } })
  await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; echo PTY-$((40+2))\n'))
  for (let i = 0; i < 100 && !screen.includes('PTY-42'); i++) await new Promise((r) => setTimeout(r, 50))
  await sbx.pty.resize(term.pid, { rows: 40, cols: 100 })
  await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; exit 0\n'))
  report.ptyExit = (await term.wait()).exitCode
  report.ptySizes = ['24 80', '40 100'].map((s) => screen.includes(s))
} finally {
  report.killed = await sbx.kill()
}
console.log(JSON.stringify(report))
