"""Running an instance: the `crmforge` command line (`cli`, `commands`), the production server
(`serve`), the background `worker`, definitions migrations (`migrate/`), demo data (`demo`), and
import and export of files (`transfer`).
"""
