/**
 * The benchmark rule set: one rule per workload filter, a filter passing about half of the messages
 * (payload.value is uniform 0–99), a transform, and a republish to out/<rule>. Rules are numbered
 * from `first`, so several files of one rule set have distinct names.
 */
export function rulesYaml (filters: string[], first = 0): string {
  const out = ['version: 1', 'rules:']
  filters.forEach((filter, at) => {
    const i = first + at
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
