"""`circulate demo`: the whole platform, run end to end on one machine, checked by its own report.

The demo starts every process the way production does (API, relay, workers) against stand-ins
for the outside world (carrier sandbox, SMTP sink), drives a seeded marketplace scenario through
the public HTTP API, and then audits the database, the sandbox and the mailbox for the promises
the platform makes: every order settles, nothing happens twice, the ledger balances.

    supervisor.py  child processes: start, wait until ready, stop (process groups)
    stack.py       which processes, in which order, with which environment
    prepare.py     database, vhost, a clean slate and an API token before the run
    catalogue.py   names, streets, items and prices per market (plain data)
    scenario.py    the seeded plan: orders and what happens to each
    driver.py      posts the orders, then cancels, ships and delivers while polling the database
    settle.py      waits until the last follow-ups (emails, ledger postings) are done
    facts.py       what the run left behind, read from Postgres, the sandbox and the maildir
    invariants.py  the named checks over those facts
    report.py      the report as a dict (the JSON contract), with throughput and latency
    render.py      the report as text
    run.py         one run, start to finish, with every process stopped whatever happens
    cli.py         the `demo` click command
"""
