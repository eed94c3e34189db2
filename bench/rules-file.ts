/**
 * The benchmark rule set: one rule per workload filter, a filter passing about half of the messages
 * (payload.value is uniform 0–99), a transform, and a republish to out/<rule>.
 */
export function rulesYaml (filters: string[]): string {
  const out = ['version: 1', 'rules:']
  filters.forEach((filter, i) => {
    out.push(
      `  - name: rule-${i}`,
      `    from: "${filter}"`,
      '    where: { ">=": [{ var: payload.value }, 50] }',
      '    set:',
      '      seq: { var: payload.seq }',
      '      t: { var: payload.t }',
      '      doubled: { "*": [{ var: payload.value }, 2] }',
      `    to: [{ mqtt: "out/${i}" }]`
    )
  })
  return out.join('\n') + '\n'
}
