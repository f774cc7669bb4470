"""Small packs for the record-layer tests (records, queries, permissions, timeline) and the
request-cost ones."""

from __future__ import annotations

THING = """\
entity: thing
label: Thing
title_field: name
search: [name, phone, code]
fields:
  name:    {type: text, required: true, max_length: 40}
  code:    {type: text, unique: true, pattern: "[A-Z]{3}"}
  notes:   {type: longtext}
  body:    {type: richtext}
  qty:     {type: integer, min: 0, max: 1000}
  price:   {type: decimal, precision: 10, scale: 3}
  total:   {type: money}
  pct:     {type: percent}
  flag:    {type: boolean}
  day:     {type: date, min: "2020-01-01", max: "=today() + days(365)"}
  moment:  {type: datetime}
  size:    {type: choice, options: [s, m, l]}
  tags:    {type: multichoice, options: [red, green, blue]}
  email:   {type: email}
  phone:   {type: phone}
  site:    {type: url}
  other:   {type: link, to: thing}
  friends: {type: links, to: thing}
  doc:     {type: file}
  pic:     {type: image}
  ref:     {type: autonumber, format: "T-{0000}"}
  subject: {type: text, default: "About {name}"}
  double:  {type: integer, formula: "qty * 2"}
views:
  list:
    sort: [name]
"""

# parent / children with every on_delete, a rollup set, and a template title
FAMILY = {
    "entities/parent.yaml": """\
        entity: parent
        title_field: name
        fields:
          name:      {type: text, required: true}
          budget:    {type: money}
          kids:      {type: integer, rollup: {from: child.parent, op: count}}
          big_kids:  {type: integer, rollup: {from: child.parent, op: count, where: "size >= 10"}}
          total:     {type: integer, rollup: {from: child.parent, op: sum, field: size}}
          biggest:   {type: integer, rollup: {from: child.parent, op: max, field: size}}
          smallest:  {type: integer, rollup: {from: child.parent, op: min, field: size}}
          mean:      {type: decimal, rollup: {from: child.parent, op: avg, field: size}}
          spare:     {type: integer, formula: "coalesce(total, 0) + 1"}
        """,
    "entities/child.yaml": """\
        entity: child
        title: "{name} of {parent}"
        fields:
          name:   {type: text, required: true}
          size:   {type: integer}
          parent: {type: link, to: parent, on_delete: cascade}
          share:  {type: money, formula: "parent.budget / 2"}
        """,
    "entities/pinned.yaml": """\
        entity: pinned
        fields:
          name:   {type: text}
          parent: {type: link, to: parent, required: true, on_delete: restrict}
        """,
    "entities/loose.yaml": """\
        entity: loose
        fields:
          name:   {type: text}
          parent: {type: link, to: parent, on_delete: set_null}
        """,
}

# roles, permissions and a workflow with a locked state
DESK = {
    "roles.yaml": """\
        roles:
          clerk:   {label: Clerk}
          senior:  {label: Senior, inherits: [clerk]}
          auditor: {label: Auditor}
          viewer:  {label: Viewer}
          nobody:  {label: Nobody}
        """,
    "entities/user_region.yaml": """\
        extends: user
        fields:
          region: {type: text}
        """,
    "entities/case.yaml": """\
        entity: case
        title_field: subject
        fields:
          subject:  {type: text, required: true}
          secret:   {type: text}
          memo:     {type: text}
          priority: {type: choice, options: [low, high], default: low}
          amount:   {type: money, min: 0}
          reason:
            type: text
            required_when: "priority == 'high'"
            visible_when: "priority == 'high'"
          locked_note: {type: text, readonly_when: "priority == 'high'"}
        validations:
          - rule: "amount == null or amount < 1000 or priority == 'high'"
            message: "Amounts of {amount} need high priority."
            field: amount
          - {rule: "subject != 'forbidden'", message: "That subject is not allowed."}
        workflow:
          initial: open
          states:
            open:   {label: Open}
            closed: {label: Closed, editable_by: [senior]}
          transitions:
            close:  {from: open, to: closed}
            reopen: {from: closed, to: open}
        permissions:
          clerk:
            read: "owner == user.id or user.team == owner.team"
            create: true
            update: "owner == user.id"
            delete: false
            hidden: [secret]
            readonly: [owner, memo]
          senior: {read: true, create: true, update: true, delete: true, assign: true}
          auditor:
            read: "priority == 'high'"
            hidden: [memo]
          viewer:
            read: "amount >= 100"
            hidden: [secret, memo]
        """,
}

DEAL = """\
entity: deal
title: "{name}"
fields:
  name: {type: text, required: true}
  amount: {type: money}
"""

# a deal with a workflow whose `close` waits for an admin's approval, and a rep role
DEAL_FLOW = DEAL + """\
workflow:
  field: stage
  initial: open
  states:
    open: {label: Open}
    working: {label: Working}
    closed: {label: Closed, final: true}
  transitions:
    start: {from: open, to: working}
    pause: {from: working, to: open}
    close: {from: working, to: closed, approval: sign_off}
approvals:
  sign_off:
    steps:
      - name: admin
        approvers: {user: admin}
permissions:
  rep: {read: true, create: true, update: "owner == user.id", delete: false}
"""
