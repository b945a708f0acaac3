rootProject.name = "llm-sidecar-jetbrains"
