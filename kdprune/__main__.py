from kdprune.cli import main

raise SystemExit(main())
