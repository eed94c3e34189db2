// $SYS/signalbox reports with a large rule set (issue 19): each round publishes one summary and
// only the rule reports that changed, in slices, and clears the report of a rule that is gone.
// The cost to delivery is measured in `npm run bench -- sys-reports`, not here.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { until } from '../helpers/latch.js'
import { connect, subscribe } from '../helpers/mqtt.js'
import { startSignalbox } from '../helpers/signalbox.js'

function rules (from: number, to: number): string {
  const lines = ['version: 1', 'rules:']
  for (let i = from; i < to; i++) lines.push(`  - name: r${i}`, `    from: load/${i}`, '    to:', `      - mqtt: out/${i}`)
  return lines.join('\n') + '\n'
}

describe('$SYS/signalbox reports of 20,000 rules', function () {
  this.timeout(90_000)

  it('sends every rule once, then only the rules that changed, with a summary each round; a removed rule\'s report is cleared', async () => {
    const count = 20_000
    const sb = await startSignalbox(rules(0, count), { settings: { sysIntervalS: 1 }, watch: true })
    const reports = await subscribe(sb.port, ['$SYS/signalbox/#'])
    const ruleTopics = (): string[] => reports.items.filter((r) => r.topic.startsWith('$SYS/signalbox/rules/')).map((r) => r.topic)
    // Retained or fresh, every rule's report arrives once the first round is out.
    await until(() => new Set(ruleTopics()).size === count, 30_000, `${count} rule reports`)
    const summaries = (): Array<{ reports: number, rules: number }> => reports.items.filter((r) => r.topic === '$SYS/signalbox/summary').map((r) => JSON.parse(r.payload) as { reports: number, rules: number })
    // An idle round: the summary says nothing follows.
    await until(() => summaries().some((s) => s.reports === 0), 10_000, 'an idle round')
    assert.equal(summaries().at(-1)!.rules, count)
    const before = ruleTopics().length
    const client = await connect(sb.port)
    await client.publishAsync('load/5', 'x', { qos: 1 })
    await client.publishAsync('load/7', 'x', { qos: 1 })
    await until(() => sb.engine.ruleCountersFor('r7')?.matched === 1, 5000, 'both handled')
    await until(() => ruleTopics().length >= before + 2, 10_000, 'the two changed reports')
    // The changed round is over once an idle one follows it: then nothing else was sent.
    const idleBefore = summaries().filter((s) => s.reports === 0).length
    await until(() => summaries().filter((s) => s.reports === 0).length > idleBefore, 10_000, 'an idle round after the change')
    assert.deepEqual(ruleTopics().slice(before).sort(), ['$SYS/signalbox/rules/r5', '$SYS/signalbox/rules/r7'])
    const r5 = reports.items.filter((r) => r.topic === '$SYS/signalbox/rules/r5').at(-1)!
    assert.equal((JSON.parse(r5.payload) as { matched: number }).matched, 1)

    // Rules r0–r9 removed by a reload: their retained reports are cleared (an empty message).
    writeFileSync(sb.file, rules(10, count))
    await until(() => sb.engine.ruleSet.rules.length === count - 10, 30_000, 'the reload')
    await until(() => reports.items.filter((r) => r.topic.startsWith('$SYS/signalbox/rules/r') && r.payload === '').length === 10, 10_000, 'ten cleared reports')
    const cleared = reports.items.filter((r) => r.payload === '' && r.topic.startsWith('$SYS/signalbox/rules/')).map((r) => r.topic).sort()
    assert.deepEqual(cleared, Array.from({ length: 10 }, (_, i) => `$SYS/signalbox/rules/r${i}`).sort())
  })
})
