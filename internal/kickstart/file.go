package kickstart

import "strings"

// Last returns the command of a family that takes effect: for a single
// command repeated in a file pykickstart keeps the last occurrence. key is a
// command family (Command.Key) or any of its names ("poweroff" finds the
// reboot family). Lines that failed to parse are skipped.
func (f *File) Last(key string) *Command {
	all := f.All(key)
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Err == "" {
			return all[i]
		}
	}
	return nil
}

// All returns every occurrence of a command family, in file order,
// including lines with errors.
func (f *File) All(key string) []*Command {
	k := f.familyOf(key)
	var out []*Command
	for _, c := range f.Commands {
		if c.Key == k {
			out = append(out, c)
		}
	}
	return out
}

// Named returns the occurrences of exactly this command name.
func (f *File) Named(name string) []*Command {
	var out []*Command
	for _, c := range f.Commands {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func (f *File) familyOf(name string) string {
	v, err := LookupVersion(f.Version)
	if err != nil {
		return name
	}
	if cls := v.commandClass(name); cls != nil {
		return familyKey(cls)
	}
	return name
}

// PowerAction is what the installer does when it has finished: "reboot",
// "poweroff", "halt" or "shutdown" — the last of these commands in the file
// wins, as in pykickstart — or "" when the kickstart has none (Anaconda
// then waits for a key press at the end, on the console).
func (f *File) PowerAction() string {
	for i := len(f.Commands) - 1; i >= 0; i-- {
		c := f.Commands[i]
		if c.Err != "" {
			continue
		}
		switch c.Name {
		case "reboot", "poweroff", "halt", "shutdown":
			return c.Name
		}
	}
	return ""
}

// InstallSources lists the locations the installer fetches software from:
// the installation method (url --url/--mirrorlist/--metalink, nfs,
// harddrive, cdrom, liveimg --url, ostreesetup --url,
// ostreecontainer --url, bootc --source-imgref) and every repo's
// --baseurl/--mirrorlist/--metalink, in file order. Methods without a URL
// are given as "cdrom", "nfs:SERVER:DIR" and "hd:PARTITION:DIR".
func (f *File) InstallSources() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	for _, c := range f.Commands {
		if c.Err != "" || c.Status == "unknown" {
			continue
		}
		switch c.Name {
		case "url", "repo":
			for _, o := range []string{"--url", "--baseurl", "--mirrorlist", "--metalink"} {
				if opt, ok := c.Opt(o); ok && opt.Name == o {
					add(opt.Value())
				}
			}
		case "liveimg", "ostreesetup", "ostreecontainer":
			if o, ok := c.Opt("--url"); ok {
				add(o.Value())
			}
		case "bootc":
			if o, ok := c.Opt("--source-imgref"); ok {
				add(o.Value())
			}
		case "cdrom":
			add("cdrom")
		case "nfs":
			server, _ := c.Opt("--server")
			dir, _ := c.Opt("--dir")
			add("nfs:" + server.Value() + ":" + dir.Value())
		case "harddrive":
			part, ok := c.Opt("--partition")
			if !ok {
				part, _ = c.Opt("--biospart")
			}
			dir, _ := c.Opt("--dir")
			add("hd:" + part.Value() + ":" + dir.Value())
		}
	}
	return out
}

// Scripts returns the script sections of a kind ("%post"…), in order.
func (f *File) Scripts(kind string) []*Section {
	var out []*Section
	for _, s := range f.Sections {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

// Text is the section body as one string, lines joined with "\n".
func (s *Section) Text() string {
	var b strings.Builder
	for i, l := range s.Body {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.Text)
	}
	return b.String()
}
