// The IntelliJ plugin around the client core (../client). Built with the IntelliJ Platform Gradle Plugin 2.x,
// which downloads the IDE to compile against: this build needs network access to Maven Central and JetBrains'
// repositories, and was not run on the machines this repo is tested on (see README.md).
plugins {
    id("java")
    // the inline completion provider implements the platform's Kotlin (suspend) API: it is written in Kotlin
    id("org.jetbrains.kotlin.jvm") version "2.1.20"
    id("org.jetbrains.intellij.platform") version "2.11.0"
}

group = "dev.llmsidecar"
version = providers.gradleProperty("pluginVersion").get()

repositories {
    mavenCentral()
    intellijPlatform {
        defaultRepositories()
    }
}

dependencies {
    intellijPlatform {
        intellijIdeaCommunity(providers.gradleProperty("platformVersion"))
    }
    // gson comes with the IntelliJ Platform; the client core needs nothing else.
}

java {
    // 2024.2+ platforms run on Java 21; the client core is Java 17 source and compiles unchanged.
    toolchain { languageVersion = JavaLanguageVersion.of(21) }
}

kotlin {
    jvmToolchain(21)
}

sourceSets {
    main {
        // the client core, compiled into the plugin: one jar, no second copy of the protocol code
        java.srcDir("../client/src/main/java")
    }
}

intellijPlatform {
    pluginConfiguration {
        version = providers.gradleProperty("pluginVersion")
        ideaVersion {
            sinceBuild = providers.gradleProperty("pluginSinceBuild")
            untilBuild = provider { null }
        }
    }
}

tasks {
    // Bundle a prebuilt sidecar as <plugin>/bin/llm-sidecar when -PsidecarBinary is given; otherwise the settings
    // page's "Sidecar binary" field (or llm-sidecar on PATH) is used.
    prepareSandbox {
        val binary = providers.gradleProperty("sidecarBinary").getOrElse("")
        if (binary.isNotBlank()) {
            from(binary) {
                into(pluginName.map { "$it/bin" })
                rename { if (it.endsWith(".exe")) "llm-sidecar.exe" else "llm-sidecar" }
                filePermissions { unix("rwxr-xr-x") }
            }
        }
    }
}
