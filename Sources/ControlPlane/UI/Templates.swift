/// The web page's Mustache templates. Values are HTML-escaped by `{{…}}`; live figures carry a
/// `data-path` the page script fills from the event stream (assets/ferry.js).
enum Templates {
    static let layout = """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}} · Ferry</title>
    <link rel="stylesheet" href="/assets/ferry.css">
    <script src="/assets/ferry.js" defer></script>
    </head>
    <body>
    <header>
      <a class="brand" href="/">Ferry</a>
      {{#user}}<span class="who">{{name}} · {{role}}</span>
      <form method="post" action="/logout"><button class="link" type="submit">Sign out</button></form>{{/user}}
    </header>
    <main>
    {{{content}}}
    </main>
    </body>
    </html>
    """

    static let login = """
    <section class="login">
      <h1>Sign in</h1>
      <p>Paste an API token. Make one on the server with<br><code>ferry token create -c ferry.yml --name you --role viewer</code></p>
      {{#message}}<p class="error">{{message}}</p>{{/message}}
      <form method="post" action="/login">
        <input type="password" name="token" placeholder="ferry_…" autocomplete="off" autofocus required>
        <button type="submit">Sign in</button>
      </form>
    </section>
    """

    static let overview = """
    <h1>Pipelines</h1>
    <table class="pipelines">
      <thead><tr><th>Pipeline</th><th>State</th>{{#clustered}}<th>Node</th>{{/clustered}}<th>Read up to</th><th class="num">Changes read</th><th class="num">Lag</th><th class="num">Changes/s</th><th>Last minute</th></tr></thead>
      <tbody>
      {{#pipelines}}
      <tr>
        <td><a href="/pipelines/{{path}}">{{name}}</a></td>
        <td><span class="state" data-path="{{name}}/state">{{state}}</span></td>
        {{#clustered}}<td data-path="{{name}}/owner">{{owner}}</td>{{/clustered}}
        <td class="mono" data-path="{{name}}/read_position">{{readPosition}}</td>
        <td class="num" data-path="{{name}}/events_read" data-format="count">{{eventsRead}}</td>
        <td class="num" data-path="{{name}}/lag_seconds" data-format="seconds">{{lag}}</td>
        <td class="num" data-path="{{name}}/events_per_second" data-format="rate">{{rate}}</td>
        <td><canvas class="spark" data-chart="{{name}}"></canvas></td>
      </tr>
      {{/pipelines}}
      </tbody>
    </table>
    {{^pipelines}}<p>No pipelines are configured.</p>{{/pipelines}}
    {{#cluster}}
    <h2>Cluster <small>answered by node {{node}}; lease {{leaseSeconds}} s, this node may write for {{writable}} more</small></h2>
    <table class="members">
      <thead><tr><th>Node</th><th>Started</th><th>Runs</th></tr></thead>
      <tbody>
      {{#members}}<tr><td>{{name}}</td><td class="mono">{{started}}</td><td>{{pipelines}}</td></tr>{{/members}}
      </tbody>
    </table>
    <h2>Changes of owner</h2>
    <table>
      <thead><tr><th>At</th><th>Pipeline</th><th>What happened</th></tr></thead>
      <tbody>
      {{#history}}<tr><td class="mono">{{at}}</td><td>{{pipeline}}</td><td>{{detail}}</td></tr>{{/history}}
      </tbody>
    </table>
    {{/cluster}}
    """

    static let pipeline = """
    {{#page}}
    <h1>{{name}} <span class="state" data-path="{{name}}/state">{{state}}</span></h1>
    {{#canOperate}}
    <div class="actions" data-pipeline="{{name}}">
      <button data-action="pause">Pause</button>
      <button data-action="resume">Resume</button>
      <button data-action="restart">Restart</button>
      <form class="snapshot" data-action="snapshot">
        <input name="tables" placeholder="db.table, db.other (empty: every table)">
        <button type="submit">Snapshot</button>
      </form>
      <span class="result" role="status"></span>
    </div>
    {{/canOperate}}
    <section class="figures">
      <div><h3>Changes/s</h3><p class="big" data-path="{{name}}/events_per_second" data-format="rate">{{rate}}</p></div>
      <div><h3>Lag</h3><p class="big" data-path="{{name}}/lag_seconds" data-format="seconds">{{lag}}</p></div>
      <div><h3>Changes read</h3><p class="big" data-path="{{name}}/events_read" data-format="count">{{eventsRead}}</p></div>
      <div><h3>Buffer</h3><p class="big"><span data-path="{{name}}/buffer_bytes" data-format="bytes">{{bufferBytes}}</span> <small>{{buffer}}</small></p></div>
      <div class="wide"><canvas class="chart" data-chart="{{name}}"></canvas></div>
    </section>
    <h2>Source <small>{{source}}</small></h2>
    <table>
      <tr><th>End of the source's log</th><td class="mono" data-path="{{name}}/source_position">{{sourcePosition}}</td></tr>
      <tr><th>Read up to</th><td class="mono" data-path="{{name}}/read_position">{{readPosition}}</td></tr>
      <tr><th>Applied by every sink</th><td class="mono" data-path="{{name}}/safe_position">{{safePosition}}</td></tr>
      {{#hasRetention}}{{#retention}}<tr><th>Binlog kept</th><td{{#low}} class="warn"{{/low}}><span class="mono">{{file}}</span> may be purged {{left}} (expiry {{expiry}}){{#low}}: let the pipeline catch up, or keep binlogs longer{{/low}}</td></tr>{{/retention}}{{/hasRetention}}
      {{#hasWALRetention}}{{#walRetention}}<tr><th>WAL kept</th><td{{#high}} class="warn"{{/high}}>slot <span class="mono">{{slot}}</span> holds {{retained}} (limit {{limit}}, {{status}}){{#high}}: let the pipeline catch up, or raise max_slot_wal_keep_size{{/high}}</td></tr>{{/walRetention}}{{/hasWALRetention}}
    </table>
    <h2>Sinks</h2>
    <table>
      <thead><tr><th>Sink</th><th>Applied position</th><th class="num">Behind (changes)</th><th class="num">Behind (s)</th><th class="num">Behind (binlog bytes)</th><th class="num">Changes/s</th></tr></thead>
      <tbody>
      {{#sinks}}
      <tr><td>{{name}}</td>
        <td class="mono" data-path="{{pipeline}}/sinks/{{name}}/applied_position">{{appliedPosition}}</td>
        <td class="num" data-path="{{pipeline}}/sinks/{{name}}/lag_events" data-format="count">{{lagEvents}}</td>
        <td class="num" data-path="{{pipeline}}/sinks/{{name}}/lag_seconds" data-format="seconds">{{lagSeconds}}</td>
        <td class="num" data-path="{{pipeline}}/sinks/{{name}}/lag_bytes" data-format="count">{{lagBytes}}</td>
        <td class="num" data-path="{{pipeline}}/sinks/{{name}}/events_per_second" data-format="rate">{{rate}}</td></tr>
      {{/sinks}}
      </tbody>
    </table>
    <h2>Tables</h2>
    {{#hasTables}}
    <table>
      <thead><tr><th>Table</th><th class="num">Changes since start</th></tr></thead>
      <tbody>{{#tables}}<tr><td>{{name}}</td><td class="num" data-path="{{pipeline}}/tables/{{name}}/changes" data-format="count">{{changes}}</td></tr>{{/tables}}</tbody>
    </table>
    {{/hasTables}}
    {{^hasTables}}<p class="quiet">No changes read yet.</p>{{/hasTables}}
    <h2>Snapshots</h2>
    {{#hasSnapshots}}
    <table>
      <thead><tr><th>Table</th><th>State</th><th>Progress</th><th class="num">Rows</th><th class="num">Chunks</th><th class="num">Rows/s</th><th class="num">Left</th></tr></thead>
      <tbody>
      {{#snapshots}}
      <tr><td>{{table}}</td><td><span data-path="{{pipeline}}/snapshots/{{table}}/state">{{state}}</span> <span class="quiet">({{reason}})</span></td>
        <td><progress max="1" value="{{fraction}}" data-path="{{pipeline}}/snapshots/{{table}}/fraction" data-format="progress"></progress></td>
        <td class="num"><span data-path="{{pipeline}}/snapshots/{{table}}/rows_done" data-format="count">{{rowsDone}}</span> / {{estimatedRows}}</td>
        <td class="num"><span data-path="{{pipeline}}/snapshots/{{table}}/chunks_done" data-format="count">{{chunksDone}}</span> / {{chunksPlanned}}</td>
        <td class="num" data-path="{{pipeline}}/snapshots/{{table}}/rows_per_second" data-format="rate">{{rowsPerSecond}}</td>
        <td class="num" data-path="{{pipeline}}/snapshots/{{table}}/seconds_left" data-format="seconds">{{secondsLeft}}</td></tr>
      {{/snapshots}}
      </tbody>
    </table>
    {{/hasSnapshots}}
    {{^hasSnapshots}}<p class="quiet">No snapshot has run.</p>{{/hasSnapshots}}
    <h2>Recent errors</h2>
    {{#hasErrors}}
    <table class="errors">
      <thead><tr><th>When</th><th>Level</th><th>Where</th><th>What</th></tr></thead>
      <tbody>{{#errors}}<tr><td class="mono">{{at}}</td><td>{{level}}</td><td class="mono">{{where}}</td><td>{{message}}</td></tr>{{/errors}}</tbody>
    </table>
    {{/hasErrors}}
    {{^hasErrors}}<p class="quiet">None since ferry started.</p>{{/hasErrors}}
    <h2>Audit log</h2>
    <table>
      <thead><tr><th>When</th><th>Who</th><th>Action</th><th>Detail</th></tr></thead>
      <tbody>{{#audit}}<tr><td class="mono">{{at}}</td><td>{{actor}}</td><td>{{action}}</td><td>{{detail}}</td></tr>{{/audit}}</tbody>
    </table>
    {{/page}}
    """
}
