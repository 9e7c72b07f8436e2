package virt

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"
)

// ErrNoVolume means a storage volume does not exist.
var ErrNoVolume = errors.New("no such storage volume")

// Volume is a storage volume in a pool.
type Volume struct {
	Pool       string
	Name       string
	Path       string
	Capacity   uint64
	Allocation uint64
}

// EnsurePool makes sure a directory storage pool named name exists at dir,
// is active and autostarts; it is created (persistent) when missing.
func (c *Conn) EnsurePool(ctx context.Context, name, dir string) error {
	cc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	p, err := cc.LookupStoragePoolByName(name)
	if err != nil {
		var le libvirt.Error
		if !errors.As(err, &le) || le.Code != libvirt.ERR_NO_STORAGE_POOL {
			return fmt.Errorf("storage pool %q: %w", name, err)
		}
		var b strings.Builder
		b.WriteString("<pool type='dir'><name>")
		xml.EscapeText(&b, []byte(name))
		b.WriteString("</name><target><path>")
		xml.EscapeText(&b, []byte(dir))
		b.WriteString("</path></target></pool>")
		p, err = cc.StoragePoolDefineXML(b.String(), 0)
		if err != nil {
			return fmt.Errorf("storage pool %q: define: %w", name, err)
		}
		if err := p.Build(0); err != nil {
			p.Free()
			return fmt.Errorf("storage pool %q: build %s: %w", name, dir, err)
		}
		p.SetAutostart(true)
	}
	defer p.Free()
	if active, _ := p.IsActive(); !active {
		if err := p.Create(0); err != nil {
			return fmt.Errorf("storage pool %q: start: %w", name, err)
		}
	}
	return nil
}

// RemovePool stops and undefines the storage pool name (its directory and
// files stay); false when there is no such pool.
func (c *Conn) RemovePool(ctx context.Context, name string) (bool, error) {
	cc, err := c.conn(ctx)
	if err != nil {
		return false, err
	}
	p, err := cc.LookupStoragePoolByName(name)
	if err != nil {
		var le libvirt.Error
		if errors.As(err, &le) && le.Code == libvirt.ERR_NO_STORAGE_POOL {
			return false, nil
		}
		return false, fmt.Errorf("storage pool %q: %w", name, err)
	}
	defer p.Free()
	if active, _ := p.IsActive(); active {
		if err := p.Destroy(); err != nil {
			return false, fmt.Errorf("storage pool %q: stop: %w", name, err)
		}
	}
	if err := p.Undefine(); err != nil {
		return false, fmt.Errorf("storage pool %q: undefine: %w", name, err)
	}
	return true, nil
}

func (c *Conn) pool(ctx context.Context, name string) (*libvirt.StoragePool, error) {
	cc, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	p, err := cc.LookupStoragePoolByName(name)
	if err != nil {
		return nil, fmt.Errorf("storage pool %q: %w", name, err)
	}
	return p, nil
}

// CreateVolume creates a sparse volume (allocation 0) of capacity bytes in
// format ("raw" or "qcow2"); backing, when set, makes a copy-on-write qcow2
// overlay of that file.
func (c *Conn) CreateVolume(ctx context.Context, pool, name string, capacity uint64, format, backing, backingFormat string) (Volume, error) {
	p, err := c.pool(ctx, pool)
	if err != nil {
		return Volume{}, err
	}
	defer p.Free()
	var b strings.Builder
	b.WriteString("<volume><name>")
	xml.EscapeText(&b, []byte(name))
	fmt.Fprintf(&b, "</name><capacity unit='bytes'>%d</capacity><allocation>0</allocation><target><format type='", capacity)
	xml.EscapeText(&b, []byte(format))
	b.WriteString("'/></target>")
	if backing != "" {
		b.WriteString("<backingStore><path>")
		xml.EscapeText(&b, []byte(backing))
		b.WriteString("</path><format type='")
		xml.EscapeText(&b, []byte(backingFormat))
		b.WriteString("'/></backingStore>")
	}
	b.WriteString("</volume>")
	v, err := p.StorageVolCreateXML(b.String(), 0)
	if err != nil {
		return Volume{}, fmt.Errorf("volume %s/%s: create: %w", pool, name, err)
	}
	defer v.Free()
	return volumeInfo(pool, name, v)
}

// LookupVolume returns a volume of a pool (refreshing the pool first, so
// files placed there by other means are seen).
func (c *Conn) LookupVolume(ctx context.Context, pool, name string) (Volume, error) {
	p, err := c.pool(ctx, pool)
	if err != nil {
		return Volume{}, err
	}
	defer p.Free()
	p.Refresh(0)
	v, err := p.LookupStorageVolByName(name)
	if err != nil {
		var le libvirt.Error
		if errors.As(err, &le) && le.Code == libvirt.ERR_NO_STORAGE_VOL {
			return Volume{}, fmt.Errorf("volume %s/%s: %w", pool, name, ErrNoVolume)
		}
		return Volume{}, fmt.Errorf("volume %s/%s: %w", pool, name, err)
	}
	defer v.Free()
	return volumeInfo(pool, name, v)
}

// DeleteVolume deletes a volume; ErrNoVolume when it does not exist.
func (c *Conn) DeleteVolume(ctx context.Context, pool, name string) error {
	p, err := c.pool(ctx, pool)
	if err != nil {
		return err
	}
	defer p.Free()
	p.Refresh(0)
	v, err := p.LookupStorageVolByName(name)
	if err != nil {
		var le libvirt.Error
		if errors.As(err, &le) && le.Code == libvirt.ERR_NO_STORAGE_VOL {
			return fmt.Errorf("volume %s/%s: %w", pool, name, ErrNoVolume)
		}
		return fmt.Errorf("volume %s/%s: %w", pool, name, err)
	}
	defer v.Free()
	if err := v.Delete(0); err != nil {
		return fmt.Errorf("volume %s/%s: delete: %w", pool, name, err)
	}
	return nil
}

// ListVolumes lists a pool's volumes.
func (c *Conn) ListVolumes(ctx context.Context, pool string) ([]Volume, error) {
	p, err := c.pool(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer p.Free()
	p.Refresh(0)
	vols, err := p.ListAllStorageVolumes(0)
	if err != nil {
		return nil, fmt.Errorf("storage pool %q: list: %w", pool, err)
	}
	out := make([]Volume, 0, len(vols))
	for i := range vols {
		name, _ := vols[i].GetName()
		if vi, err := volumeInfo(pool, name, &vols[i]); err == nil {
			out = append(out, vi)
		}
		vols[i].Free()
	}
	return out, nil
}

func volumeInfo(pool, name string, v *libvirt.StorageVol) (Volume, error) {
	path, err := v.GetPath()
	if err != nil {
		return Volume{}, err
	}
	info, err := v.GetInfo()
	if err != nil {
		return Volume{}, err
	}
	return Volume{Pool: pool, Name: name, Path: path, Capacity: info.Capacity, Allocation: info.Allocation}, nil
}
