"""Reading records, always through the reader's row filter.

`permissions` says who may do what and is the only builder of the SQL row filter
(`read_filter`); `listrequest` parses a list's query string once for every surface; `queries`
reads records and pages of them; `titles` renders every record title; `timeline`, `people`,
`dashboards` and `export` read the rest. Nothing here writes.
"""
