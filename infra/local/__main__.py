from infra.local.stack import main

raise SystemExit(main())
