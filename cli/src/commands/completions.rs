//! `completions SHELL` and `man`: generated from the clap definition itself, so they never
//! disagree with the command line they describe.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::commands::Cli;
use crate::context::{Answer, CliError};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `tripletex-webhooks.1` and one page per command (`tripletex-webhooks-status.1`, ...)
    /// into this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn completions(args: &CompletionsArgs) -> Result<Answer, CliError> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    Ok(Answer {
        text: String::from_utf8_lossy(&script).into_owned(),
        needs_a_person: false,
    })
}

pub fn man(args: &ManArgs) -> Result<Answer, CliError> {
    let command = Cli::command();
    let text = match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|error| CliError::Write(dir.clone(), error))?;
            clap_mangen::generate_to(command, dir)
                .map_err(|error| CliError::Write(dir.clone(), error))?;
            format!("man pages written to {}\n", dir.display())
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|error| CliError::Write(PathBuf::from("-"), error))?;
            String::from_utf8_lossy(&page).into_owned()
        }
    };
    Ok(Answer {
        text,
        needs_a_person: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_name_every_command_and_the_man_page_documents_them() {
        let bash = completions(&CompletionsArgs { shell: Shell::Bash })
            .unwrap()
            .text;
        for command in [
            "status",
            "show",
            "resync",
            "send",
            "forget",
            "mirror",
            "companies",
        ] {
            assert!(
                bash.contains(command),
                "{command} missing from the bash completions"
            );
        }
        let page = man(&ManArgs { out_dir: None }).unwrap().text;
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq"),
            "roff: {}",
            &page[..40.min(page.len())]
        );
        assert!(
            page.contains("tripletex\\-webhooks\\-status"),
            "the commands are listed"
        );
    }

    #[test]
    fn a_man_page_per_command_is_written_into_a_directory() {
        let dir = std::env::temp_dir().join(format!("man-{}", std::process::id()));
        man(&ManArgs {
            out_dir: Some(dir.clone()),
        })
        .unwrap();
        for page in [
            "tripletex-webhooks.1",
            "tripletex-webhooks-status.1",
            "tripletex-webhooks-mirror-rebuild.1",
        ] {
            assert!(dir.join(page).is_file(), "{page}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
