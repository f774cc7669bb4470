"""The bottom layer: what every other layer stands on.

The running `Instance` and the `Actor` (`instance`), the database and its transactions (`db`),
the tables built from the model (`schema`), the one exception hierarchy (`errors`), every
module-level cache (`caches`), the hook specifications (`hooks`), expression contexts
(`context`) and the expression-to-SQL compiler (`expressions/`), value coercion and the JSON
shape of a record (`values`), password hashing, the rich-text sanitiser, server-side sessions.
It imports no other layer.
"""
